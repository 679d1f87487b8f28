"""Progress of long steps: log lines off a terminal, silence with --quiet, a bar on a terminal."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_model import FAST, TINY, synthetic_input

from vaebin.progress import Progress
from vaebin.train import train_vae

CLI = os.path.join(os.path.dirname(sys.executable), "vaebin-rs")


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "vaebin"]


def test_log_lines_report_count_details_rate_and_time_left(caplog) -> None:
    caplog.set_level(logging.INFO, logger="vaebin")
    with Progress("training", 4, "epoch", bar=False, interval=0) as progress:
        progress.update(1, loss=0.5, batch=16)
        progress.update(3, loss=0.25, batch=32)
    first, last = _messages(caplog)
    assert first.startswith("training: epoch 1/4 (25 %), loss 0.5, batch 16, ")
    assert "epochs/s, about " in first and first.endswith(" left")
    assert last.startswith("training: epoch 4/4 (100 %), loss 0.25, batch 32, ")
    assert " left" not in last and "done in " in last


def test_lines_come_at_most_once_per_interval_and_never_when_quiet(caplog) -> None:
    caplog.set_level(logging.INFO, logger="vaebin")
    with Progress("training", 100, "epoch", bar=False, interval=3600) as progress:
        for _ in range(100):
            progress.update(1)
    assert _messages(caplog) == []  # a short step inside one interval stays silent
    with Progress("training", 3, "epoch", quiet=True, interval=0) as progress:
        for _ in range(3):
            progress.update(1, loss=1.0)
    assert _messages(caplog) == []


def test_training_logs_each_epoch_off_a_terminal(caplog, monkeypatch) -> None:
    monkeypatch.setenv("VAEBIN_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="vaebin")
    config = replace(FAST, quiet=False)
    train_vae(synthetic_input(), config, model_config=TINY)  # stderr is no terminal here
    lines = [m for m in _messages(caplog) if m.startswith("training: ")]
    assert [line.split(",")[0] for line in lines] == [
        f"training: epoch {n}/4 ({25 * n} %)" for n in range(1, 5)
    ]
    assert all(", loss " in line for line in lines)
    caplog.clear()
    train_vae(synthetic_input(), FAST, model_config=TINY)  # FAST is quiet
    assert not [m for m in _messages(caplog) if m.startswith("training: ")]


def test_cli_training_progress_in_a_log_file(tmp_path: Path) -> None:
    """As under Nextflow or SLURM: stderr to a file gets the lines, --quiet none."""
    community, features = tmp_path / "community", tmp_path / "features"
    subprocess.run(
        [CLI, "simulate", "--preset", "toy", "--outdir", str(community), "-q"], check=True
    )
    subprocess.run(
        [CLI, "featurize", "--contigs", str(community / "contigs.fna.gz"), "--bamdir",
         str(community), "--outdir", str(features), "-q"],
        check=True,
    )  # fmt: skip
    environment = {**os.environ, "VAEBIN_PROGRESS_SECONDS": "0"}
    for quiet in (False, True):
        log_file = tmp_path / f"train-{quiet}.log"
        with open(log_file, "w") as stderr:
            subprocess.run(
                [CLI, "train", "--features", str(features), "--outdir", str(tmp_path / "model"),
                 "--epochs", "3", "--threads", "1", *(["-q"] if quiet else [])],
                check=True, stderr=stderr, env=environment,
            )  # fmt: skip
        lines = [line for line in log_file.read_text().splitlines() if "training: epoch" in line]
        if quiet:
            assert lines == []
        else:
            assert [line.split("training: ")[1].split(",")[0] for line in lines] == [
                "epoch 1/3 (33 %)",
                "epoch 2/3 (67 %)",
                "epoch 3/3 (100 %)",
            ]


def test_a_terminal_gets_a_bar_and_no_log_lines(caplog, capsys) -> None:
    caplog.set_level(logging.INFO, logger="vaebin")
    with Progress("training", 2, "epoch", bar=True, interval=0) as progress:
        progress.update(1, loss=0.5)
        progress.update(1, loss=0.25)
    assert _messages(caplog) == []
    drawn = capsys.readouterr().err
    assert "training: 100%" in drawn and "2/2" in drawn and "loss=0.25" in drawn
