"""SIGKILL `bin`, `coverage` and `featurize` part way: the output folder never holds a file that
looks complete but is not, and a rerun with the same arguments gives the uninterrupted result.

Kill points are found by watching the output folder (the first file to appear, the features
being done) or named through VAEBIN_TEST_KILL_AT (see `vaebin.io.kill_point`): `rename:<file>`
stops a run with that output whole under its temporary name, `step:<name>` before a `bin` step.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vaebin.io import KILL_ENV
from vaebin.pipeline import FEATURE_FILES
from vaebin.simulate import SimulationConfig, simulate_community

# About a minute on two free cores: each `bin` run pays for starting torch.
pytestmark = pytest.mark.slow

CLI = os.path.join(os.path.dirname(sys.executable), "vaebin-rs")
BIN_OPTIONS = ["--epochs", "10", "--threads", "2", "--quiet", "--min-bin-size", "50000"]
# summary.json fields that differ between two runs of the same command: timings and memory at
# any depth, and the command line (it names the output folder).
RUN_SPECIFIC = ("seconds", "peak_rss_mb", "command")


def _is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and (".tmp" in path.name or path.name.endswith(".partial"))


def _visible_files(folder: Path) -> dict[str, bytes]:
    """Every file under its final name, by relative path."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not _is_temporary(path)
    }


def _comparable(files: dict[str, bytes]) -> dict[str, object]:
    out: dict[str, object] = dict(files)
    if "summary.json" in files:
        out["summary.json"] = _without_run_specifics(json.loads(files["summary.json"]))
    return out


def _without_run_specifics(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_run_specifics(v) for k, v in value.items() if k not in RUN_SPECIFIC}
    if isinstance(value, list):
        return [_without_run_specifics(v) for v in value]
    return value


def _assert_only_whole_files(folder: Path, reference: dict[str, bytes]) -> None:
    """Each file under a final name is byte for byte what an uninterrupted run writes there."""
    for name, content in _visible_files(folder).items():
        assert name != "summary.json", "a killed run left the mark of a complete one"
        assert name in reference, f"{name}: not an output of an uninterrupted run"
        assert content == reference[name], f"{name}: present but not whole"


def _start(args: list[str | Path], kill_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    if kill_at is not None:
        env[KILL_ENV] = kill_at
    return subprocess.Popen(
        [CLI, *map(str, args)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _run(args: list[str | Path]) -> None:
    process = _start(args)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr.decode()


def _kill_when(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], then_wait: float = 0.0
) -> None:
    """SIGKILL `process` once `ready()` holds (after `then_wait` seconds more)."""
    deadline = time.monotonic() + 300
    while not ready():
        assert process.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.005)
    time.sleep(then_wait)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def _kill_after(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """SIGKILL after `seconds` unless the run ended first; whether it was killed."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        return True
    assert process.returncode == 0, process.stderr.read().decode() if process.stderr else ""
    return False


def _wait_killed_by_hook(process: subprocess.Popen[bytes]) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, stderr.decode()


def _any_file(folder: Path) -> Callable[[], bool]:
    return lambda: (
        folder.is_dir() and any(p.is_file() and not _is_temporary(p) for p in folder.rglob("*"))
    )


@pytest.fixture(scope="module")
def community(tmp_path_factory: pytest.TempPathFactory):
    return simulate_community(tmp_path_factory.mktemp("toy"), SimulationConfig.toy(seed=3))


def _bin_args(community, outdir: Path) -> list[str | Path]:
    bams = [arg for bam in community.bams for arg in ("--bam", bam)]
    return ["bin", "--contigs", community.contigs_fasta, *bams, "--outdir", outdir, *BIN_OPTIONS]


@pytest.fixture(scope="module")
def bin_reference(community, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("bin_reference") / "out"
    _run(_bin_args(community, outdir))
    return outdir


@pytest.mark.parametrize(
    ("point", "rerun"),
    [
        ("first output", False),
        ("mid-training", True),
        ("rename:clusters.tsv", False),
        ("rename:summary.json", False),
    ],
)
def test_bin_killed(
    community, bin_reference: Path, tmp_path: Path, point: str, rerun: bool
) -> None:
    outdir = tmp_path / "out"
    args = _bin_args(community, outdir)
    if point == "first output":
        _kill_when(_start(args), _any_file(outdir))
    elif point == "mid-training":
        # save_features writes samples.txt last; the 10 epochs then take about a second.
        _kill_when(_start(args), (outdir / "features" / "samples.txt").is_file, then_wait=0.3)
    else:
        _wait_killed_by_hook(_start(args, kill_at=point))
    reference = _visible_files(bin_reference)
    _assert_only_whole_files(outdir, reference)
    if point == "rename:summary.json":
        # Everything else was done: only the mark of completion is missing.
        assert set(_visible_files(outdir)) == set(reference) - {"summary.json"}
        assert (outdir / "bins").is_dir() and list(outdir.glob(".summary.json.*.tmp"))
    if rerun:
        _run(args)
        assert _comparable(_visible_files(outdir)) == _comparable(reference)


def test_a_killed_rerun_drops_the_previous_runs_summary(
    community, bin_reference: Path, tmp_path: Path
) -> None:
    outdir = tmp_path / "out"
    shutil.copytree(bin_reference, outdir)
    _wait_killed_by_hook(_start(_bin_args(community, outdir), kill_at="step:cluster"))
    # The earlier outputs stay (this run rewrote them identically) but nothing claims the
    # folder holds a complete run any more.
    assert not (outdir / "summary.json").exists()
    _assert_only_whole_files(outdir, _visible_files(bin_reference))


def _featurize_args(community, outdir: Path) -> list[str | Path]:
    bams = [arg for bam in community.bams for arg in ("--bam", bam)]
    return ["featurize", "--contigs", community.contigs_fasta, *bams, "--outdir", outdir]


@pytest.fixture(scope="module")
def featurize_reference(community, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("featurize_reference") / "out"
    _run(_featurize_args(community, outdir))
    assert sorted(_visible_files(outdir)) == sorted(FEATURE_FILES)
    return outdir


@pytest.mark.parametrize(
    "point", ["after 0.5 s", "first output", "rename:depths.npy", "rename:samples.txt"]
)
def test_featurize_killed(community, featurize_reference: Path, tmp_path: Path, point: str) -> None:
    outdir = tmp_path / "out"
    args = _featurize_args(community, outdir)
    if point == "after 0.5 s":
        _kill_after(_start(args), 0.5)
    elif point == "first output":
        _kill_when(_start(args), _any_file(outdir))
    else:
        _wait_killed_by_hook(_start(args, kill_at=point))
        # The files written before the kill point are there, whole.
        assert "composition.npy" in _visible_files(outdir)
        assert "samples.txt" not in _visible_files(outdir)
    reference = _visible_files(featurize_reference)
    _assert_only_whole_files(outdir, reference)
    if point == "rename:samples.txt":
        _run(args)
        assert _visible_files(outdir) == reference


def test_a_killed_featurize_never_leaves_two_runs_features_side_by_side(
    community, featurize_reference: Path, tmp_path: Path
) -> None:
    outdir = tmp_path / "out"
    shutil.copytree(featurize_reference, outdir)
    # The same folder again, with another k, killed once the new composition is in place.
    args = [*_featurize_args(community, outdir), "-k", "3"]
    _wait_killed_by_hook(_start(args, kill_at="rename:contigs.tsv"))
    # composition.npy and depths.npy of the k=3 run are in place; the k=4 run's contigs.tsv and
    # samples.txt must not complete the set.
    assert np.load(outdir / "composition.npy").shape[1] == 32
    assert sorted(_visible_files(outdir)) == ["composition.npy", "depths.npy"]


def _coverage_args(community, out: Path) -> list[str | Path]:
    bams = [arg for bam in community.bams for arg in ("--bam", bam)]
    return ["coverage", "--contigs", community.contigs_fasta, *bams, "--out", out]


@pytest.fixture(scope="module")
def coverage_reference(community, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("coverage_reference") / "depth.tsv"
    _run(_coverage_args(community, out))
    return out.read_bytes()


@pytest.mark.parametrize("point", ["after 0.5 s", "first output", "rename:depth.tsv"])
def test_coverage_killed(community, coverage_reference: bytes, tmp_path: Path, point: str) -> None:
    outdir = tmp_path / "out"
    out = outdir / "depth.tsv"
    args = _coverage_args(community, out)
    if point == "after 0.5 s":
        _kill_after(_start(args), 0.5)
    elif point == "first output":
        _kill_when(_start(args), _any_file(outdir))
    else:
        _wait_killed_by_hook(_start(args, kill_at=point))
        assert not out.exists()
        assert [p.name.startswith(".depth.tsv.") for p in outdir.iterdir()] == [True]
    _assert_only_whole_files(outdir, {"depth.tsv": coverage_reference})
    if point == "rename:depth.tsv":
        _run(args)
        assert out.read_bytes() == coverage_reference
