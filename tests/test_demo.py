"""`vaebin-rs demo` scores its bins with the function behind `vaebin-rs evaluate`.

The demo's own communities take minutes to bin, so these tests swap in the toy communities (the
same code path with less data) and check that the table the demo prints is exactly what
`evaluate` prints for the files the demo wrote.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from vaebin.cli import main
from vaebin.simulate import SimulationConfig
from vaebin.simulate_reads import LongReadConfig


def _invoke(arguments: list[str]) -> str:
    result = CliRunner().invoke(main, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_contig_demo_prints_the_evaluate_table(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        SimulationConfig, "small", classmethod(lambda cls, **overrides: cls.toy(**overrides))
    )
    out = tmp_path / "demo"
    printed = _invoke(["demo", "--outdir", str(out), "--seed", "1", "--threads", "1", "-q"])
    community = out / "community"
    table = _invoke(
        [
            "evaluate",
            "--truth",
            str(community / "truth.binning"),
            "--bins",
            str(out / "bins" / "clusters.tsv"),
            "--contigs",
            str(community / "contigs.fna.gz"),
        ]
    )
    assert printed.startswith(table)
    closing = printed[len(table) :].strip()
    assert closing.startswith("6 genomes, 2 samples of short reads simulated; bins in ")
    assert str(out / "bins") in closing


def test_long_read_demo_prints_the_evaluate_table(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        LongReadConfig, "small", classmethod(lambda cls, **overrides: cls.toy(**overrides))
    )
    out = tmp_path / "demo"
    printed = _invoke(
        ["demo", "--long-reads", "--outdir", str(out), "--seed", "1", "--threads", "1", "-q"]
    )
    table = _invoke(
        [
            "evaluate",
            "--truth",
            str(out / "community" / "truth.binning"),
            "--bins",
            str(out / "bins" / "read_clusters.tsv"),
        ]
    )
    assert printed.startswith(table)
    assert printed[len(table) :].strip().startswith("4 genomes, 2 samples of long reads simulated")
