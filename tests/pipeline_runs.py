"""Runs of the Nextflow pipeline's test profile, shared by the SLURM and Apptainer tests.

`local_test_run()` runs `nextflow run nextflow/main.nf -profile test` once per pytest process
with the local executor and the `vaebin-rs` of this interpreter; the other executors and
containers must publish the same results (`comparable_results`).
"""

from __future__ import annotations

import atexit
import functools
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAIN_NF = REPO / "nextflow" / "main.nf"
INSTALLER = REPO / ".ci" / "install-nextflow.sh"

# Keys of summary.json that differ between two runs of the same binning, at any depth: wall
# times and memory peaks; at the top, the interpreter's patch version (the image's Debian Python
# against the host's). Its "command" is compared without the folder of the program.
RUN_SPECIFIC = ("seconds", "peak_rss_mb")
TOP_LEVEL_RUN_SPECIFIC = ("python",)
MARKER_FILE_SPECIFIC = ("hmm", "hmm_from")


def _without_run_specifics(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_run_specifics(v) for k, v in value.items() if k not in RUN_SPECIFIC}
    if isinstance(value, list):
        return [_without_run_specifics(item) for item in value]
    return value


@functools.cache
def nextflow_wrapper() -> Path:
    """The `nextflow` wrapper of .ci/install-nextflow.sh (installed on first use)."""
    result = subprocess.run(
        ["bash", str(INSTALLER)],
        env={**os.environ, "CI": "true"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"install-nextflow.sh failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1]) / "nextflow"


def cli_path() -> Path | None:
    """The `vaebin-rs` console script next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "vaebin-rs"
    if beside.is_file():
        return beside
    found = shutil.which("vaebin-rs")
    return Path(found) if found else None


def pipeline_command(folder: Path, *args: str) -> list[str]:
    """`nextflow run main.nf` with log, work dir, results and trace under `folder`."""
    return [
        str(nextflow_wrapper()),
        "-log", str(folder / ".nextflow.log"),
        "run", str(MAIN_NF),
        "-work-dir", str(folder / "work"),
        "-ansi-log", "false",
        "--outdir", str(folder / "results"),
        "-with-trace", str(folder / "trace.txt"),
        *args,
    ]  # fmt: skip


def task_env(extra: dict[str, str] | None = None, *, with_cli: bool = True) -> dict[str, str]:
    """Nextflow's environment, which local and SLURM tasks inherit: the CLI's folder on PATH."""
    env = {**os.environ, "NXF_ANSI_LOG": "false", **(extra or {})}
    env.pop("NXF_WORK", None)
    cli = cli_path()
    if with_cli and cli is not None:
        env["PATH"] = f"{cli.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_pipeline(
    folder: Path,
    *args: str,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
    timeout: int = 900,
) -> subprocess.CompletedProcess[str]:
    """Run the pipeline in `folder` (prefix: e.g. `runuser -u USER --`); raise on failure."""
    command = [*prefix, *pipeline_command(folder, *args)]
    result = subprocess.run(
        command,
        cwd=folder,
        env=env if env is not None else task_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        log = folder / ".nextflow.log"
        tail = log.read_text(errors="replace")[-5000:] if log.exists() else "(no log)"
        raise AssertionError(
            f"nextflow failed ({result.returncode}): {' '.join(command)}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-2000:]}\n"
            f"--- {log}\n{tail}"
        )
    return result


@functools.cache
def local_test_run() -> Path:
    """`-profile test` with the local executor, once per process; returns its folder."""
    folder = Path(tempfile.mkdtemp(prefix="vaebin-local-test-run-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    run_pipeline(folder, "-profile", "test")
    return folder


def comparable_results(results: Path) -> dict[str, object]:
    """Every published file except the run reports: gzip files by content, summary.json
    without its timings, everything else by bytes."""
    files: dict[str, object] = {}
    for path in sorted(results.rglob("*")):
        relative = path.relative_to(results).as_posix()
        if not path.is_file() or relative.startswith("pipeline_info/"):
            continue
        if path.name == "summary.json":
            summary = _without_run_specifics(json.loads(path.read_text()))
            summary = {k: v for k, v in summary.items() if k not in TOP_LEVEL_RUN_SPECIFIC}
            # argv[0] is where the command lives: the host's virtual environment or the image's.
            summary["command"] = [Path(summary["command"][0]).name, *summary["command"][1:]]
            # The marker HMM file is the same (its sha256 is compared) wherever it lies: the
            # host's cache or the image's copy.
            for key in MARKER_FILE_SPECIFIC:
                summary.get("markers", {}).pop(key, None)
            files[relative] = summary
        elif path.suffix == ".gz":
            files[relative] = gzip.decompress(path.read_bytes())
        else:
            files[relative] = path.read_bytes()
    return files


def differing(left: dict[str, object], right: dict[str, object]) -> list[str]:
    """Names of the files that one side lacks or that differ."""
    return sorted(name for name in left.keys() | right.keys() if left.get(name) != right.get(name))
