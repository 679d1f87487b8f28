"""How the overlap graph's latent smoothing should weigh overlaps: a probe on long-read sets.

Features and the VAE's latent are made once per (community, samples, seed) as `run_bin_reads`
makes them and cached under /tmp/vaebin-smoothing-probe; then each setting smooths the latent
with overlaps sharing at least `min_shared` graph k-mers, for `rounds` rounds, clusters with
the read defaults and scores against the read-level truth in bases:

    python benchmarks/dev/read_smoothing_probe.py set1 --samples 1 --settings 3:4,5:4,7:4
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from read_abundance_probe import cluster_reads, train_latent  # benchmarks/dev, beside this
from reads import COMMUNITIES, SAMPLES, sample_read_names

from vaebin.evaluate import evaluate_bins
from vaebin.io.cami import read_cami_binning, read_truth_lengths
from vaebin.reads import (
    ReadScaleConfig,
    _smooth,
    compute_read_features,
    load_read_features,
    read_model_input,
    save_read_features,
)

CACHE = Path("/tmp/vaebin-smoothing-probe")


def band_abundance(features, band: tuple[float, float]) -> np.ndarray:
    """Reads x samples: the mean count between the `band` quantiles of each sample's histogram
    of the read's solid k-mer counts (bin centres; an approximation of the Rust band mean)."""
    bins = int(features.config["histogram_bins"])
    width = int(features.config["bin_width"])
    centres = np.arange(bins, dtype=np.float64) * width + (width - 1) / 2
    centres[0] = max(1.0, centres[0])
    histograms = np.asarray(features.histograms, dtype=np.float64)
    out = np.zeros((features.n_reads, histograms.shape[1] // bins), dtype=np.float32)
    for sample in range(out.shape[1]):
        h = histograms[:, sample * bins : (sample + 1) * bins]
        cumulative = np.cumsum(h, axis=1)
        inside = np.clip(cumulative, *band) - np.clip(cumulative - h, *band)
        out[:, sample] = (inside * centres).sum(1) / np.maximum(inside.sum(1), 1e-9)
    return out


def latent_of(community: str, samples: int, seed: int, band: str = "", hidden: int = 0):
    """(features, model input, latent) of the community's first `samples` samples."""
    folder = CACHE / f"{community}-s{samples}"
    spec = COMMUNITIES[community]
    if not (folder / "done").is_file():
        features = compute_read_features(
            [spec.sample_reads(s) for s in range(1, samples + 1)], threads=2
        )
        save_read_features(folder / "features", features)
        (folder / "done").write_text("")
    features = load_read_features(folder / "features")
    if band:
        low, high = (float(v) for v in band.split(":"))
        features = replace(features, abundance=band_abundance(features, (low, high)))
    scale = ReadScaleConfig()
    model_input = read_model_input(features, scale)
    latent_path = folder / f"latent-seed{seed}{'-band' + band if band else ''}"
    latent_path = latent_path.with_name(
        latent_path.name + (f"-h{hidden}" if hidden else "") + ".npy"
    )
    if not latent_path.is_file():
        model_config = None
        if hidden:
            from vaebin.model import ModelConfig

            preset = ModelConfig.for_preset("default", model_input.n_samples)
            model_config = replace(preset, hidden_sizes=(hidden, hidden))
        started = time.perf_counter()
        latent = train_latent(model_input, seed, model_config)
        print(f"trained in {time.perf_counter() - started:.1f} s", flush=True)
        np.save(latent_path, latent)
    return features, model_input, np.load(latent_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("community", choices=sorted(COMMUNITIES))
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settings", default="3:4", help="min_shared:rounds[:power],...")
    parser.add_argument("--band", default="", help="abundance from this histogram band, lo:hi")
    parser.add_argument("--hidden", type=int, default=0, help="hidden layer width (0: preset's)")
    options = parser.parse_args()
    logging.disable(logging.INFO)
    spec = COMMUNITIES[options.community]
    features, model_input, latent = latent_of(
        options.community, options.samples, options.seed, options.band, options.hidden
    )
    assert features.graph is not None
    matrix = features.graph.symmetric()
    names = features.names.astype(str)
    truth = read_cami_binning(spec.truth)
    lengths = read_truth_lengths(spec.truth)
    if options.samples < SAMPLES:
        given = {n for s in range(1, options.samples + 1) for n in sample_read_names(spec, s)}
        truth = {n: g for n, g in truth.items() if n in given}
    for setting in options.settings.split(","):
        fields = [float(v) for v in setting.split(":")]
        min_shared, rounds = fields[0], int(fields[1])
        power = fields[2] if len(fields) > 2 else 1.0
        weights = matrix.copy()  # type: ignore[attr-defined]
        weights.data[weights.data < min_shared] = 0
        weights.eliminate_zeros()
        weights.data = weights.data.astype(np.float32) ** power
        points = _smooth(latent, weights, rounds) if rounds else latent
        bins = cluster_reads(points, model_input, names, features.abundance)
        result = evaluate_bins(truth, lengths, bins)
        print(
            f"{options.community} s{options.samples} seed {options.seed} band {options.band} "
            f"hidden {options.hidden or 'preset'} "
            f"min_shared "
            f"{min_shared:g} rounds {rounds} power {power:g}: NC {result.near_complete}, "
            f"ARI {result.adjusted_rand_index:.3f}, {result.n_bins} bins",
            flush=True,
        )


if __name__ == "__main__":
    main()
