"""`vaebin-rs demo`: simulate a small community, bin it and score the bins, end to end.

The scores come from :func:`vaebin.evaluate.evaluate_files`, the function behind
`vaebin-rs evaluate`, on the files the run wrote, so the demo shows what a user would get by
running the three commands by hand.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from vaebin.evaluate import EvaluationResult, evaluate_files

log = logging.getLogger("vaebin")


@dataclass(frozen=True)
class DemoResult:
    """The scores of a demo run and what it made."""

    evaluation: EvaluationResult
    genomes: int
    samples: int
    bins_dir: Path
    seconds: float

    def report(self, what: str) -> str:
        """The score table and one closing line."""
        return (
            f"{self.evaluation.table()}\n\n{self.genomes} genomes, {self.samples} samples of "
            f"{what} simulated; bins in {self.bins_dir}; {self.seconds:.0f} s in all."
        )


def run_demo(
    outdir: Path, seed: int = 0, threads: int | None = None, quiet: bool = False
) -> DemoResult:
    """Contigs: simulate a small community with short-read BAMs, `bin` it, `evaluate` it."""
    from vaebin.cluster import ClusterConfig
    from vaebin.encode import EncodeConfig
    from vaebin.pipeline import BinRequest, run_bin
    from vaebin.simulate import SimulationConfig, simulate_community
    from vaebin.train_config import TrainConfig

    started = time.perf_counter()
    log.info("simulating a small community in %s", outdir / "community")
    community = simulate_community(outdir / "community", SimulationConfig.small(seed=seed))
    bins_dir = outdir / "bins"
    run_bin(
        BinRequest(
            contigs=community.contigs_fasta,
            outdir=bins_dir,
            bams=tuple(community.bams),
            threads=threads,
        ),
        EncodeConfig(),
        TrainConfig.for_preset("default", seed=seed, device="auto", threads=threads, quiet=quiet),
        ClusterConfig(threads=threads or 1),
    )
    evaluation = evaluate_files(
        community.truth_binning, bins_dir / "clusters.tsv", community.contigs_fasta
    )
    return DemoResult(
        evaluation,
        len(community.genomes),
        len(community.bams),
        bins_dir,
        time.perf_counter() - started,
    )


def run_demo_long_reads(
    outdir: Path, seed: int = 0, threads: int | None = None, quiet: bool = False
) -> DemoResult:
    """Long reads: simulate 8 genomes in 3 samples of long reads, `bin-reads`, `evaluate`."""
    from vaebin.reads import (
        ReadBinRequest,
        ReadFeatureConfig,
        ReadScaleConfig,
        read_cluster_config,
        read_train_config,
        run_bin_reads,
    )
    from vaebin.simulate_reads import LongReadConfig, simulate_long_reads

    started = time.perf_counter()
    log.info("simulating a small long-read community in %s", outdir / "community")
    community = simulate_long_reads(
        outdir / "community", LongReadConfig.small(seed=seed, threads=threads or 0)
    )
    bins_dir = outdir / "bins"
    run_bin_reads(
        ReadBinRequest(reads=tuple(community.read_files), outdir=bins_dir, threads=threads),
        ReadFeatureConfig(),
        ReadScaleConfig(),
        read_train_config(seed=seed, device="auto", threads=threads, quiet=quiet),
        read_cluster_config(threads=threads or 1),
    )
    evaluation = evaluate_files(community.truth_binning, bins_dir / "read_clusters.tsv")
    return DemoResult(
        evaluation,
        len(community.genomes),
        len(community.read_files),
        bins_dir,
        time.perf_counter() - started,
    )
