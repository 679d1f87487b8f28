"""The benchmark protocol's pieces: one genome out of a multi-genome file (set 3), set 4's
genomes out of pinned PyPI sdists and the leave-one-step-out table, against hand-written
expectations."""

from __future__ import annotations

import hashlib
import importlib
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_module(name: str) -> ModuleType:
    """A script of benchmarks/ imported as a module (they import each other by bare name)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def test_a_record_of_a_multi_genome_file_is_the_whole_genome(tmp_path: Path) -> None:
    community = benchmark_module("debian_community")
    root = tmp_path / "root"
    (root / "doc").mkdir(parents=True)
    (root / "doc" / "three.fasta").write_text(">first x\nAC\nGT\n>second\nggcc\n>third\nTTTA\n")
    sources = (
        community.GenomeSource("two", "the second", "pkg", "doc/three.fasta", record=2),
        community.GenomeSource("all", "every record", "pkg", "doc/three.fasta"),
    )
    genomes = community.prepare_genomes(tmp_path / "out", root, sources)
    assert genomes["two"] == [("two|1", b"GGCC")]
    assert [name for name, _ in genomes["all"]] == ["all|1", "all|2", "all|3"]
    assert (tmp_path / "out" / "genomes" / "two.fna").read_text() == ">two|1\nGGCC\n"
    assert sources[0].location == "/doc/three.fasta, record 2"
    missing = community.GenomeSource("four", "none", "pkg", "doc/three.fasta", record=4)
    with pytest.raises(SystemExit, match="no record 4"):
        community.prepare_genomes(tmp_path / "out", root, (missing,))


def test_set_3_shares_no_genome_file_with_sets_1_and_2() -> None:
    community = benchmark_module("debian_community")
    used = {
        (source.path, source.member, source.record)
        for number in (1, 2)
        for source in community.GENOME_SETS[number].sources
    }
    held_out = community.GENOME_SETS[3]
    assert held_out.label == "debian3" and held_out.outdir.name == "community-debian3"
    for source in held_out.sources:
        # A record of a multi-genome file is another genome than the file's other records.
        assert (source.path, source.member, source.record) not in used
        assert (source.path, source.member, 0) not in used


def test_set_4_holds_new_species_from_pinned_pypi_sdists() -> None:
    community = benchmark_module("debian_community")
    earlier = [s for number in (1, 2, 3) for s in community.GENOME_SETS[number].sources]
    held_out = community.GENOME_SETS[4]
    assert held_out.label == "debian4" and held_out.outdir.name == "community-debian4"
    assert (held_out.seed, held_out.samples) == (17, 4)
    names = [source.genome for source in held_out.sources]
    assert len(names) == len(set(names)) == 13
    assert not set(names) & {source.genome for source in earlier}
    for source in held_out.sources:
        assert source.registry == "pypi" and source.parent == "-"
        archive, sha256 = community.PYPI_SDISTS[source.package]
        assert source.path == archive and len(sha256) == 64
        assert source.member.startswith(archive.removesuffix(".tar.gz") + "/")
        assert source.origin == f"PyPI sdist {source.package}: {archive}:{source.member}"
    assert all(source.registry == "debian" for source in earlier)


def test_a_genome_is_read_out_of_a_pypi_sdist(tmp_path: Path) -> None:
    community = benchmark_module("debian_community")
    member = tmp_path / "genome.gbk"
    member.write_text("LOCUS       X1  8 bp\nORIGIN\n        1 acgtnrac\n//\n")
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    with tarfile.open(sdists / "tool-1.0.tar.gz", "w:gz") as archive:
        archive.add(member, arcname="tool-1.0/tests/genome.gbk")
    source = community.GenomeSource(
        "g",
        "a genome",
        "tool==1.0",
        "tool-1.0.tar.gz",
        member="tool-1.0/tests/genome.gbk",
        registry="pypi",
    )
    genomes = community.prepare_genomes(tmp_path / "out", tmp_path / "debian", (source,), sdists)
    assert genomes["g"] == [("g|1", b"ACGTNNAC")]
    assert source.origin == "PyPI sdist tool==1.0: tool-1.0.tar.gz:tool-1.0/tests/genome.gbk"


def test_a_cached_sdist_with_another_sha256_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    community = benchmark_module("debian_community")
    (tmp_path / "tool-1.0.tar.gz").write_bytes(b"not the pinned archive")
    monkeypatch.setitem(community.PYPI_SDISTS, "tool==1.0", ("tool-1.0.tar.gz", "0" * 64))
    with pytest.raises(SystemExit, match="not the pinned"):
        community.fetch_sdist("tool==1.0", tmp_path)
    digest = hashlib.sha256(b"not the pinned archive").hexdigest()
    monkeypatch.setitem(community.PYPI_SDISTS, "tool==1.0", ("tool-1.0.tar.gz", digest))
    assert community.fetch_sdist("tool==1.0", tmp_path) == tmp_path / "tool-1.0.tar.gz"
    with pytest.raises(SystemExit, match="no pinned sdist"):
        community.fetch_sdist("other==2.0", tmp_path)


def test_leave_one_out_table_gives_means_and_the_change_against_every_step_on() -> None:
    binning = benchmark_module("binning")

    def figures(nc: int, mq: int, ari: float, binned: float, bins: int) -> dict:
        return {
            "near_complete": nc,
            "medium_quality": mq,
            "ari": ari,
            "binned_percent": binned,
            "bins": bins,
            "cluster_seconds": 1.0,
        }

    record = {
        "seeds": [1, 2],
        "variants": {
            binning.ALL_STEPS: {
                "1": figures(10, 12, 0.9, 90.0, 11),
                "2": figures(12, 13, 0.8, 95.0, 12),
            },
            "recluster": {
                "1": figures(9, 12, 0.7, 90.0, 10),
                "2": figures(10, 12, 0.6, 96.0, 10),
            },
        },
    }
    assert binning.leave_one_out_table(record) == [
        "| step off | NC per seed (1 / 2) | NC, mean | NC change | >50% compl. >90% pure, mean "
        "| ARI (bp), mean | binned bp, mean | bins, mean |",
        "|---|---|---|---|---|---|---|---|",
        "| none (every step) | 10 / 12 | 11.0 | - | 12.5 | 0.850 | 92.5% | 11.5 |",
        "| `recluster` | 9 / 10 | 9.5 | -1.5 | 12.0 | 0.650 | 93.0% | 10.0 |",
    ]


def test_set_5_pairs_siblings_that_never_shared_a_community() -> None:
    community = benchmark_module("debian_community")
    binning = benchmark_module("binning")
    held_out = community.GENOME_SETS[5]
    assert held_out.label == "debian5" and held_out.outdir.name == "community-debian5"
    assert (held_out.seed, held_out.samples) == (19, 4)
    names = [source.genome for source in held_out.sources]
    assert len(names) == len(set(names)) == 12
    assert all(source.parent == "-" for source in held_out.sources)
    earlier = {
        number: {s.genome for s in community.GENOME_SETS[number].sources} for number in (1, 2, 3, 4)
    }
    for pair in (("kpne", "kspc"), ("hpylsjm", "hpylf32")):
        assert set(pair) <= set(names)
        # The two genomes of a sibling pair were never binned together before.
        assert not any(set(pair) <= genomes for genomes in earlier.values())
    assert binning.COMMUNITY_ROLES["debian5"] == "held out"
    assert binning.REAL_COMMUNITIES["debian5"] == 5
