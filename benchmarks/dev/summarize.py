"""Print runs.jsonl (written by bench.py) as a compact table, optionally filtered by data set."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    """Print one row per run, grouped by data set."""
    wanted = {name for name in sys.argv[1:] if not name.endswith(".jsonl")}
    rows = []
    for line in (
        (
            Path(__file__).parent
            / (sys.argv[-1] if sys.argv[-1].endswith(".jsonl") else "runs_phase2.jsonl")
        )
        .read_text()
        .splitlines()
    ):
        if not line.startswith("{"):
            continue
        run = json.loads(line)
        if wanted and run["data"] not in wanted:
            continue
        training = {**run["arch"], **run["train"]}
        training.pop("batch_doubling_epochs", None)
        rows.append(
            (
                run["data"],
                run["model"],
                json.dumps(training, separators=(",", ":")),
                run["train_seed"],
                json.dumps(run["cluster"], separators=(",", ":")),
                run["nc"],
                run["c70p90"],
                run["c50p90"],
                run["ari"],
                run["binned"],
                run["bins"],
                run["train_s"],
            )
        )
    header = ["data", "model", "training", "seed", "cluster", "NC", "c70p90", "c50p90"]
    header += ["ARI", "binned", "bins", "train_s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(value) for value in row) + " |")


if __name__ == "__main__":
    main()
