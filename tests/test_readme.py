"""The README's set-up commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(bash \.ci/setup && [^\n]+)\n```", text)


def test_readme_has_the_two_setup_commands() -> None:
    commands = readme_commands()
    assert commands[0] == "bash .ci/setup && .venv/bin/vaebin-rs demo"
    assert commands[1] == "bash .ci/setup && .venv/bin/python -m pytest -q"


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines
