"""10^5 to 10^6 contigs with 100 samples through training and clustering (issue 15 item 5).

Each size runs in a fresh process (`--child N`), which draws synthetic features, builds the
model input, trains the default VAE for `--epochs` epochs, encodes every contig, clusters the
latent means with the default `ClusterConfig` (HDBSCAN on the longest 50,000, the rest voted
in) and scores the bins against the genomes the contigs were drawn from; it reports seconds
and peak RSS after each step. The parent adds the child's wall time, CPU time and peak RSS.

    python benchmarks/scale.py [--sizes 100000,300000,1000000] [--samples 100] [--epochs 2]
                               [--threads 2] [--write-results]

Features: genomes of 400 contigs; a genome's composition is a Dirichlet draw over the 136
canonical tetramers and each contig's a Dirichlet draw around it, sharper for longer contigs
(more k-mers); a genome's abundance is log-normal in every sample and a contig's depth a gamma
draw around it (noisier for shorter contigs); lengths log-normal (median 4 kbp, at least 2 kbp).
Training time per epoch is what grows with the data; the default 100 epochs take about 50 times
the figure for 2.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone

import numpy as np
from _measure import replace_results_section

SECTION_TITLE = "## Training and clustering at scale"
CONTIGS_PER_GENOME = 400
N_COMPOSITION = 136


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_features(n_contigs: int, n_samples: int, seed: int) -> dict[str, np.ndarray]:
    """Composition (float32 frequencies), depths (float32), lengths and genome of each contig."""
    rng = np.random.default_rng(seed)
    n_genomes = max(2, n_contigs // CONTIGS_PER_GENOME)
    genome = rng.integers(n_genomes, size=n_contigs)
    lengths = np.maximum(2000, rng.lognormal(np.log(4000), 0.8, size=n_contigs)).astype(np.int64)
    profiles = rng.dirichlet(np.full(N_COMPOSITION, 2.0), size=n_genomes).astype(np.float32)
    composition = np.empty((n_contigs, N_COMPOSITION), dtype=np.float32)
    chunk = 50_000
    for first in range(0, n_contigs, chunk):
        rows = slice(first, first + chunk)
        # A Dirichlet draw around the profile with concentration ~ the contig's k-mers: the
        # gamma trick row by row, vectorised.
        alpha = profiles[genome[rows]] * (lengths[rows, None] / 4).astype(np.float32)
        draws = rng.standard_gamma(alpha).astype(np.float32)
        composition[rows] = draws / draws.sum(axis=1, keepdims=True)
    abundance = rng.lognormal(1.0, 1.5, size=(n_genomes, n_samples)).astype(np.float32)
    shape = (lengths / 200).astype(np.float32)[:, None]  # reads per contig-ish: longer, steadier
    depths = np.empty((n_contigs, n_samples), dtype=np.float32)
    for first in range(0, n_contigs, chunk):
        rows = slice(first, first + chunk)
        noise = rng.standard_gamma(np.broadcast_to(shape[rows], (shape[rows].shape[0], n_samples)))
        depths[rows] = abundance[genome[rows]] * (noise / shape[rows]).astype(np.float32)
    return {"composition": composition, "depths": depths, "lengths": lengths, "genome": genome}


def child(
    n_contigs: int, n_samples: int, epochs: int, threads: int, seed: int, cluster: bool = True
) -> dict:
    """One size, all steps, in this process; returns the figures as a dict."""
    from vaebin.cluster import ClusterConfig, cluster_latent
    from vaebin.encode import EncodeConfig, build_model_input
    from vaebin.evaluate import evaluate_bins

    steps: dict[str, dict[str, float]] = {}

    def mark(name: str, started: float) -> None:
        steps[name] = {"seconds": round(time.perf_counter() - started, 1), "rss_mb": peak_rss_mb()}

    started = time.perf_counter()
    data = synthetic_features(n_contigs, n_samples, seed)
    names = np.array([f"c{i}" for i in range(n_contigs)], dtype=object)
    mark("data", started)
    started = time.perf_counter()
    model_input = build_model_input(
        data["composition"], data["depths"], data["lengths"], names, EncodeConfig()
    )
    del data["composition"]
    mark("model_input", started)
    started = time.perf_counter()
    from vaebin.train import TrainConfig, train_vae  # torch loads here, as in `vaebin-rs bin`

    trained = train_vae(model_input, TrainConfig(epochs=epochs, seed=seed, threads=threads))
    mark("train", started)
    steps["train"]["seconds_per_epoch"] = round(steps["train"]["seconds"] / epochs, 1)
    if not cluster:
        return {
            "contigs": n_contigs,
            "contigs_embedded": int(model_input.n_contigs),
            "genomes": int(np.unique(data["genome"]).size),
            "samples": n_samples,
            "epochs": epochs,
            "steps": steps,
        }
    started = time.perf_counter()
    clustering = cluster_latent(
        trained.latent_means,
        model_input.contig_lengths,
        model_input.names,
        ClusterConfig(threads=threads),
        depths=data["depths"][model_input.kept],
    )
    mark("cluster", started)
    kept = model_input.names.astype(str)
    genome_of = dict(zip(names.astype(str).tolist(), data["genome"].tolist(), strict=True))
    truth = {name: f"g{genome_of[name]}" for name in kept.tolist()}
    sizes = dict(zip(kept.tolist(), model_input.contig_lengths.tolist(), strict=True))
    scores = evaluate_bins(truth, sizes, clustering.contig_bins(model_input.names))
    return {
        "contigs": n_contigs,
        "contigs_embedded": int(model_input.n_contigs),
        "genomes": len(scores.genomes),
        "samples": n_samples,
        "epochs": epochs,
        "steps": steps,
        "cluster_steps": clustering.step_summaries(),
        "nc": scores.near_complete,
        "ari": round(scores.adjusted_rand_index, 4),
        "binned": round(scores.binned_bp / scores.total_bp, 4),
        "bins": len(clustering.bin_names),
    }


def run_size(options: argparse.Namespace, size: int) -> dict:
    argv = [
        sys.executable, __file__, "--child", str(size), "--samples", str(options.samples),
        "--epochs", str(options.epochs), "--threads", str(options.threads),
        "--seed", str(options.seed), *(["--train-only"] if options.train_only else []),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"size {size} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_s"] = round(wall, 1)
    figures["cpu_s"] = round(
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1
    )
    figures["peak_rss_mb"] = round(max(s["rss_mb"] for s in figures["steps"].values()))
    return figures


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| contigs | genomes | samples | epochs | train s/epoch | cluster s | wall s | CPU s "
        "| peak RSS MB (data / input / train / cluster) | NC genomes | ARI | binned |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    for row in rows:
        steps = row["steps"]
        names = ("data", "model_input", "train", "cluster")
        rss = " / ".join(f"{steps[s]['rss_mb']:.0f}" if s in steps else "-" for s in names)
        clustered = "cluster" in steps
        binned = f"{100 * row['binned']:.1f}%" if clustered else "-"
        lines.append(
            f"| {row['contigs']:,} | {row['genomes']:,} | {row['samples']} | {row['epochs']} "
            f"| {steps['train']['seconds_per_epoch']} "
            f"| {steps['cluster']['seconds'] if clustered else '-'} "
            f"| {row['wall_s']} | {row['cpu_s']} | {rss} | {row.get('nc', '-')} "
            f"| {row.get('ari', '-')} "
            f"| {binned} |"
        )
    return lines


def write_section(lines: list[str]) -> None:
    """Replace (or append) this script's section of RESULTS.md."""
    replace_results_section(SECTION_TITLE, lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--train-only", action="store_true", help="stop after training (time and memory)"
    )
    parser.add_argument("--write-results", action="store_true")
    options = parser.parse_args(argv)
    if options.child is not None:
        figures = child(
            options.child,
            options.samples,
            options.epochs,
            options.threads,
            options.seed,
            cluster=not options.train_only,
        )
        print(json.dumps(figures))
        return
    rows = []
    for size in [int(part) for part in options.sizes.split(",") if part]:
        row = run_size(options, size)
        rows.append(row)
        print(json.dumps(row), flush=True)
        print("\n".join(table(rows)), flush=True)
    if options.write_results:
        load = " ".join(f"{value:.2f}" for value in __import__("os").getloadavg())
        write_section(
            [
                f"`python benchmarks/scale.py --sizes {options.sizes} --samples {options.samples} "
                f"--epochs {options.epochs} --threads {options.threads}` (issue 15 item 5); "
                f"{platform.machine()}, "
                f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load average {load} at the end.",
                "",
                *table(rows),
            ]
        )


if __name__ == "__main__":
    main()
