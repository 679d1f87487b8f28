"""`.ci/setup` prints one line per step and, when a step fails, the tail of its log.

Run on a copy of the script with stand-ins for dpkg and Rust's tools, so nothing is installed:
the Python step fails on purpose through $PYTHON.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SHIMS = {
    "dpkg": "exit 0",  # every Debian package counts as installed
    "cargo": "exit 0",
    "rustup": "printf 'rustfmt-x86_64-unknown-linux-gnu\\nclippy-x86_64-unknown-linux-gnu\\n'",
    "rustc": "echo 'rustc 1.0.0 (stand-in)'",
    # The interpreter that would create .venv: 100 lines of output, then exit status 3.
    "failing-python": 'for i in $(seq 1 100); do echo "venv line $i"; done; exit 3',
}


def run_setup(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "setup", repo / ".ci" / "setup")
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, body in SHIMS.items():
        (shims / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (shims / name).chmod(0o755)
    env = {
        key: value for key, value in os.environ.items() if key not in {"VAEBIN_SETUP_LOG", "SUDO"}
    }
    env.update(PATH=f"{shims}{os.pathsep}/usr/bin{os.pathsep}/bin", PYTHON="failing-python")
    return subprocess.run(
        ["bash", str(repo / ".ci" / "setup")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_setup_prints_one_line_per_step_and_the_log_tail_on_failure(tmp_path: Path) -> None:
    result = run_setup(tmp_path)
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "[setup] log: .ci/logs/setup.log"
    assert re.fullmatch(
        r"\[setup\] Debian packages +\d+ s \(already installed: metabat samtools "
        r"default-jre-headless maven\)",
        lines[1],
    )
    assert re.fullmatch(
        r"\[setup\] Rust: rustfmt, clippy +\d+ s \(rustc 1\.0\.0 \(stand-in\)\)", lines[2]
    )
    assert re.fullmatch(
        r"\[setup\] Python environment \.venv +FAILED after \d+ s \(exit 3\)", lines[3]
    )
    assert lines[4] == "----- last 40 lines of .ci/logs/setup.log"
    # The log's last 40 lines: venv lines 62-100 and the failure marker.
    assert lines[5:44] == [f"venv line {i}" for i in range(62, 101)]
    assert lines[44] == "===== Python environment .venv failed (exit 3)"
    assert lines[45:] == [
        "-----",
        "[setup] Python environment .venv failed; full log: .ci/logs/setup.log",
    ]
    log = (tmp_path / "repo" / ".ci" / "logs" / "setup.log").read_text()
    assert "venv line 1\n" in log and "venv line 100\n" in log
    assert not (tmp_path / "repo" / ".venv").exists()
