"""Paired comparison of clustering settings on the same latent spaces (runs.jsonl of bench.py).

Usage: python benchmarks/dev/paired.py '<baseline cluster overrides as JSON>'
For every training run that was clustered with the baseline, each other setting's metrics minus
the baseline's, averaged over runs (default model only; the multi-split data set left out).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

METRICS = ("nc", "c70p90", "c50p90", "ari", "binned")


def main() -> None:
    """Print mean paired differences per clustering setting."""
    baseline = json.dumps(json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}"), sort_keys=True)
    by_training: dict[str, dict[str, dict]] = defaultdict(dict)
    for line in (
        (Path(__file__).parent / (sys.argv[2] if len(sys.argv) > 2 else "runs_phase2.jsonl"))
        .read_text()
        .splitlines()
    ):
        if not line.startswith("{"):
            continue
        run = json.loads(line)
        if run["model"] != "default" or run["data"] == "multisplit":
            continue
        training = json.dumps(
            [run["data"], run["train"], run["arch"], run["train_seed"]], sort_keys=True
        )
        by_training[training][json.dumps(run["cluster"], sort_keys=True)] = run
    differences: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for settings in by_training.values():
        if baseline not in settings:
            continue
        for name, run in settings.items():
            for metric in METRICS:
                differences[name][metric].append(run[metric] - settings[baseline][metric])
    for name, values in sorted(differences.items()):
        count = len(values["nc"])
        means = " ".join(f"{m}={sum(values[m]) / count:+.3f}" for m in METRICS)
        print(f"{name:62s} runs={count:2d} {means}")


if __name__ == "__main__":
    main()
