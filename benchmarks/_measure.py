"""Benchmark helpers: one child process, its cost, the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

MB = 1_000_000
"""Decimal megabyte: every MB and MB/s figure the benchmarks print uses it."""
GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class ChildRun:
    """What one finished child process cost and what it printed."""

    wall_seconds: float
    """From spawn to exit, interpreter start-up and imports included."""
    cpu_seconds: float
    """User plus system time of the child and of any children it waited for."""
    peak_rss_bytes: int
    """Largest resident set of the child or of one of its waited-for children."""
    stdout: str


def run_child(
    argv: Sequence[str], env: Mapping[str, str] | None = None, capture_stdout: bool = True
) -> ChildRun:
    """Run `argv` to completion in a fresh process and return its wall time, CPU time and peak RSS.

    With `capture_stdout=False` the child writes to /dev/null and `stdout` is empty. Raises
    `subprocess.CalledProcessError` (with the child's stderr) when it exits non-zero.
    """
    # GNU time starts the child and reads its rusage. Reading it here with os.wait4 would be
    # wrong: Linux carries the peak RSS of the forked image into the exec'd program, so every
    # child would report at least this (numpy-laden) process's RSS; `gzip -dc` showed 53 MB.
    with (
        tempfile.NamedTemporaryFile(mode="r") as usage_file,
        tempfile.TemporaryFile() as stdout_file,
        tempfile.TemporaryFile() as stderr_file,
    ):
        timed = [GNU_TIME, "--format", "%M %U %S", "--output", usage_file.name, *argv]
        start = time.perf_counter()
        completed = subprocess.run(
            timed,
            stdout=stdout_file if capture_stdout else subprocess.DEVNULL,
            stderr=stderr_file,
            stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env),
        )
        wall_seconds = time.perf_counter() - start
        stdout_file.seek(0)
        stderr_file.seek(0)
        stdout = stdout_file.read().decode()
        stderr = stderr_file.read().decode()
        # On failure GNU time writes "Command exited with non-zero status N" first.
        peak_rss_kib, user_seconds, system_seconds = usage_file.read().split()[-3:]
    if completed.returncode != 0:
        raise subprocess.CalledProcessError(completed.returncode, list(argv), stdout, stderr)
    return ChildRun(
        wall_seconds=wall_seconds,
        cpu_seconds=float(user_seconds) + float(system_seconds),
        peak_rss_bytes=int(peak_rss_kib) * 1024,  # GNU time >= 1.8 reports kibibytes
        stdout=stdout,
    )


def current_rss_bytes() -> int:
    """Resident set size of the calling process now (Linux /proc), for an after-import baseline."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS missing from /proc/self/status")


def machine_description() -> dict[str, str]:
    """CPU count and model, memory, kernel, load and UTC date of this machine, as printable text."""
    cpu_model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
                break
    load_1, load_5, load_15 = os.getloadavg()
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu_model": cpu_model,
        "memory": f"{memory_kib / 1024**2:.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "load_average": f"{load_1:.2f} {load_5:.2f} {load_15:.2f}",
        "date_utc": datetime.now(timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y"),
    }


def replace_results_section(title: str, lines: Sequence[str]) -> None:
    """Replace the section headed `title` (e.g. "## Clustering at scale") of RESULTS.md with
    `lines`, or append it when absent."""
    from pathlib import Path

    path = Path(__file__).resolve().parent / "RESULTS.md"
    text = path.read_text()
    section = "\n".join([title, "", *lines]).rstrip() + "\n"
    start = text.find(f"\n{title}\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + ("" if end < 0 else text[end:])
    path.write_text(text)
