"""How the clustering step scales with the number of contigs (issue #6).

HDBSCAN's cost grows about as the square of the points it clusters, so `vaebin.cluster` runs it
on at most `max_hdbscan_contigs` contigs (the longest) and votes the others into the clusters.
This script times `cluster_latent` on synthetic 32-dimensional latent spaces of growing size,
with the limit (the default) and, up to a size where it still ends in minutes, without it, and
scores both against the clusters the points were drawn from:

    python benchmarks/clustering_scale.py [--sizes 10000,50000,200000] [--full-up-to 50000]
                                          [--write-results]

Points: Gaussian clusters, one per genome (latent size 32, standard normal centres), contigs
with log-normal lengths (median 4 kbp); a contig's spread around its genome's centre shrinks
with its length, as a longer contig's latent position rests on more k-mers and reads. Time is
the CPU time of the calling process (user + system).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
from _measure import replace_results_section

from vaebin.cluster import ClusterConfig, cluster_latent
from vaebin.evaluate import evaluate_bins

SECTION_TITLE = "## Clustering at scale"
LATENT_SIZE = 32
CONTIGS_PER_GENOME = 400
# A 4 kbp contig's standard deviation around its genome's centre, per latent dimension (centres
# are standard normal): genomes overlap a little, so a few contigs fall between them.
SPREAD = 0.8


def synthetic_latent(n_contigs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latent means, lengths and genome of each contig (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_genomes = max(2, n_contigs // CONTIGS_PER_GENOME)
    centres = rng.normal(size=(n_genomes, LATENT_SIZE))
    genome = rng.integers(n_genomes, size=n_contigs)
    lengths = np.maximum(2000, rng.lognormal(np.log(4000), 0.8, size=n_contigs)).astype(np.int64)
    spread = SPREAD * np.sqrt(4000 / lengths)[:, None]
    latent = centres[genome] + spread * rng.normal(size=(n_contigs, LATENT_SIZE))
    return latent.astype(np.float32), lengths, genome


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(n_contigs: int, config: ClusterConfig, seed: int) -> dict[str, float]:
    """Cluster one synthetic latent space; CPU and wall seconds, NC genomes and ARI."""
    latent, lengths, genome = synthetic_latent(n_contigs, seed)
    names = np.array([f"c{i}" for i in range(n_contigs)], dtype=object)
    cpu, wall = cpu_seconds(), time.perf_counter()
    result = cluster_latent(latent, lengths, names, config)
    cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    truth = {f"c{i}": f"g{g}" for i, g in enumerate(genome)}
    sizes = dict(zip(truth, lengths.tolist(), strict=True))
    scores = evaluate_bins(truth, sizes, result.contig_bins(names))
    return {
        "contigs": n_contigs,
        "genomes": len(scores.genomes),
        "cpu_s": cpu,
        "wall_s": wall,
        "nc": scores.near_complete,
        "ari": scores.adjusted_rand_index,
        "binned": scores.binned_bp / scores.total_bp,
    }


def write_section(lines: list[str]) -> None:
    """Replace (or append) this script's section of RESULTS.md."""
    replace_results_section(SECTION_TITLE, lines)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError("sizes must be integers of at least 100")
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[10_000, 50_000, 200_000])
    parser.add_argument(
        "--full-up-to",
        type=int,
        default=50_000,
        help="also cluster without the limit up to this many contigs [50000]",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=ClusterConfig().max_hdbscan_contigs,
        help="max_hdbscan_contigs [the default, 50000]",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-results", action="store_true")
    options = parser.parse_args(argv)

    limited = ClusterConfig(metric="cosine", min_bin_size=0, max_hdbscan_contigs=options.limit)
    unlimited = replace(limited, max_hdbscan_contigs=None)
    rows = [
        "| contigs | genomes | HDBSCAN on | CPU time | wall time | NC genomes | ARI | binned |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in options.sizes:
        runs = [(f"the longest {options.limit:,}" if size > options.limit else "all", limited)]
        if options.limit < size <= options.full_up_to:
            runs.append(("all", unlimited))
        for label, config in runs:
            figures = measure(size, config, options.seed)
            row = (
                f"| {size:,} | {figures['genomes']} | {label} | {figures['cpu_s']:.1f} s "
                f"| {figures['wall_s']:.1f} s | {figures['nc']} | {figures['ari']:.4f} "
                f"| {100 * figures['binned']:.1f}% |"
            )
            rows.append(row)
            print(row, flush=True)

    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        f"`python benchmarks/clustering_scale.py --sizes {','.join(map(str, options.sizes))} "
        f"--full-up-to {options.full_up_to} --limit {options.limit}` (issue #6): "
        "`vaebin.cluster.cluster_latent` with its defaults (cosine, HDBSCAN min_cluster_size 10, "
        "min_samples 3, re-clustering, noise voting) and `max_hdbscan_contigs` "
        f"{options.limit:,} on synthetic 32-dimensional latent spaces "
        f"({CONTIGS_PER_GENOME} contigs per genome, log-normal lengths, a contig's spread "
        "shrinking with its length; see the script). CPU time is user + system of the process.",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"{platform.system()} {platform.release()}; "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, load average {load}.",
        "",
        *rows,
    ]
    print("\n".join(lines))
    if options.write_results:
        write_section(lines)


if __name__ == "__main__":
    sys.exit(main())
