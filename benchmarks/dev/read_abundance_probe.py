"""Why a one-sample `bin-reads` run merges genomes: a probe of its abundance signal.

Given a finished `vaebin-rs bin-reads` output folder (features/, latent.npy, read_clusters.tsv)
and the read-level truth, prints per genome its true depth and the reads' abundance estimates,
how clean the latent neighbourhoods of two named genomes are, and (with --retrain) what the
binning scores when the abundance fed to the VAE comes from another source:

- `kmers`: the band mean of the read's solid k-mer counts (today's, rust/src/readcov.rs);
- `overlaps`: the read's shared graph k-mers with its overlapping reads, per kbp of read;
- `both`: the two side by side.

    python benchmarks/dev/read_abundance_probe.py OUT TRUTH --pair ccre ck31 --retrain

The figures it gave on held-out long-read set 4 are in benchmarks/RESULTS.md, "Long reads".
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from vaebin.cluster import cluster_latent
from vaebin.evaluate import evaluate_bins
from vaebin.io.cami import read_cami_binning, read_truth_lengths
from vaebin.reads import (
    ReadFeatures,
    ReadScaleConfig,
    _rows,
    load_read_features,
    read_cluster_config,
    read_model_input,
    read_train_config,
    smooth_over_graph,
    training_rows,
)

SOURCES = ("kmers", "overlaps", "both")


def overlap_strength(features: ReadFeatures) -> np.ndarray:
    """Reads x samples: graph k-mers shared with overlapping reads of each sample, per kbp."""
    assert features.graph is not None
    n_samples = np.asarray(features.abundance).shape[1]
    member = np.zeros((features.n_reads, n_samples), dtype=np.float32)
    member[np.arange(features.n_reads), features.sample_of_read] = 1.0
    per_kbp = np.asarray(features.lengths, dtype=np.float32)[:, None] / 1000.0
    return np.asarray(features.graph.symmetric() @ member) / per_kbp  # type: ignore[operator]


def abundance_of(features: ReadFeatures, source: str) -> np.ndarray:
    """The abundance columns `source` names (see the module docstring)."""
    kmers = np.asarray(features.abundance, dtype=np.float32)
    if source == "kmers":
        return kmers
    strength = overlap_strength(features).astype(np.float32)
    return strength if source == "overlaps" else np.concatenate([kmers, strength], axis=1)


def train_latent(model_input, seed: int, model_config=None) -> np.ndarray:
    """The latent of the default preset trained as `run_bin_reads` trains it (2 threads, CPU)."""
    from vaebin.train import encode_latent, train_vae

    config = read_train_config("default", seed=seed, threads=2, device="cpu")
    rows = training_rows(model_input.n_contigs, ReadScaleConfig().max_train_reads, seed)
    trained = train_vae(_rows(model_input, rows), config, model_config=model_config)
    return encode_latent(trained.model, model_input)


def cluster_reads(
    points: np.ndarray, model_input, names: np.ndarray, depths: np.ndarray
) -> dict[str, str]:
    """read name -> bin, clustered with the read defaults as `run_bin_reads` clusters."""
    clustering = cluster_latent(
        points,
        model_input.contig_lengths,
        model_input.names,
        read_cluster_config(threads=2),
        depths=depths,
    )
    return {
        n: clustering.bin_names[b] for n, b in zip(names, clustering.labels, strict=True) if b >= 0
    }


def score(features: ReadFeatures, source: str, seed: int, truth: Path) -> str:
    """Train, encode, smooth and cluster as `run_bin_reads` does, with `source`'s abundance."""
    probe = replace(features, abundance=abundance_of(features, source))
    scale = ReadScaleConfig()
    model_input = read_model_input(probe, scale)
    latent = train_latent(model_input, seed)
    assert features.graph is not None
    points = smooth_over_graph(latent, features.graph, scale.latent_smoothing)
    names = features.names.astype(str)
    bins = cluster_reads(points, model_input, names, probe.abundance)
    kept = set(names)
    genome_of = {n: g for n, g in read_cami_binning(truth).items() if n in kept}
    result = evaluate_bins(genome_of, read_truth_lengths(truth), bins)
    return (
        f"{source:8} seed {seed}: NC {result.near_complete}, ARI "
        f"{result.adjusted_rand_index:.3f}, {result.n_bins} bins"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="a bin-reads output folder")
    parser.add_argument("truth", type=Path, help="CAMI truth of the reads (genomes.tsv beside)")
    parser.add_argument("--pair", nargs=2, default=("ccre", "ck31"), help="two genomes")
    parser.add_argument("--sample", type=int, default=1, help="depth column of genomes.tsv")
    parser.add_argument("--retrain", action="store_true", help="score every abundance source")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    logging.disable(logging.INFO)
    features = load_read_features(options.outdir / "features")
    genome_of = read_cami_binning(options.truth)
    genomes = np.array([genome_of.get(n, "?") for n in features.names.astype(str)])
    depth = {}
    for line in (options.truth.parent / "genomes.tsv").read_text().splitlines()[1:]:
        fields = line.split("\t")
        depth[fields[0]] = float(fields[1 + options.sample])
    kmers = np.asarray(features.abundance)[:, 0]
    strength = overlap_strength(features)[:, 0]
    print("genome    depth  k-mer abundance (median, IQR)  overlap strength per kbp (median)")
    for genome in sorted(depth, key=lambda g: -depth[g]):
        rows = genomes == genome
        low, mid, high = np.percentile(kmers[rows], [25, 50, 75])
        print(
            f"{genome:8} {depth[genome]:6.2f}  {mid:6.2f} ({low:.2f}-{high:.2f})"
            f"           {np.median(strength[rows]):7.2f}"
        )
    from sklearn.neighbors import NearestNeighbors

    latent = np.load(options.outdir / "latent.npy")
    pair = np.isin(genomes, options.pair)
    assert features.graph is not None
    for rounds in (0, 4, 8):
        points = smooth_over_graph(latent, features.graph, rounds) if rounds else latent
        points = points[pair] / np.linalg.norm(points[pair], axis=1, keepdims=True)
        labels = genomes[pair]
        _, neighbours = NearestNeighbors(n_neighbors=11).fit(points).kneighbors(points)
        same = (labels[neighbours[:, 1:]] == labels[:, None]).mean()
        centres = [points[labels == g].mean(axis=0) for g in options.pair]
        spread = np.sqrt(((points[labels == options.pair[0]] - centres[0]) ** 2).sum(1).mean())
        print(
            f"latent smoothed {rounds} rounds: {same:.3f} of 10 nearest neighbours of one genome "
            f"of the pair; centres {np.linalg.norm(centres[0] - centres[1]) / spread:.2f} "
            "spreads apart"
        )
    if options.retrain:
        for source in SOURCES:
            print(score(features, source, options.seed, options.truth))


if __name__ == "__main__":
    main()
