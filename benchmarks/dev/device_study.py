"""Why does CUDA training recover fewer genomes than CPU training? (issue #6, dev study)

Trains the default VAE on saved features (`vaebin-rs featurize` output, or a `bin` run's
features/ directory) once per run spec DEVICE:SEED:VARIANT, clusters each latent with the default
ClusterConfig and scores it against a CAMI truth file. One line per run goes to stdout and to
OUT/runs.tsv; each latent is kept as OUT/latent_<spec>.npy so that runs on different machines can
be compared (`--compare A.npy B.npy`).

Variants:
- plain: the product as it is;
- cpurng: every random draw of training (the reparameterisation noise and the dropout masks) is
  made by the CPU generator and copied to the device, so a CPU run and a CUDA run of the same
  seed see the same random numbers and differ only in floating-point arithmetic;
- fp64: plain, in float64 (the model and the features), to see how far rounding moves the result.

    python benchmarks/dev/device_study.py --features F --truth T --out OUT \
        cuda:1:plain cuda:1:cpurng cpu:1:cpurng ...
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vaebin import model as model_module
from vaebin.cluster import ClusterConfig, cluster_latent
from vaebin.encode import EncodeConfig, ModelInput, build_model_input
from vaebin.evaluate import evaluate_bins
from vaebin.io.cami import read_cami_binning, read_truth_lengths
from vaebin.pipeline import load_features
from vaebin.train import TrainResult, train_vae
from vaebin.train_config import TrainConfig


class CpuDropout(nn.Module):
    """Dropout whose mask is drawn by the CPU generator whatever the device."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return values
        keep = (torch.rand(values.shape) >= self.p).to(values.device, values.dtype)
        return values * keep / (1.0 - self.p)


def _cpu_randn_like(values: torch.Tensor) -> torch.Tensor:
    return torch.randn(values.shape, dtype=values.dtype).to(values.device)


def _train(
    model_input: ModelInput, device: str, seed: int, variant: str, threads: int
) -> TrainResult:
    original_randn_like = torch.randn_like
    original_dropout = model_module.nn.Dropout
    original_default = torch.get_default_dtype()
    try:
        if variant == "cpurng":
            model_module.torch.randn_like = _cpu_randn_like  # type: ignore[assignment]
            model_module.nn.Dropout = CpuDropout  # type: ignore[misc]
        elif variant == "fp64":
            torch.set_default_dtype(torch.float64)
        elif variant != "plain":
            raise SystemExit(f"unknown variant {variant}")
        config = TrainConfig(seed=seed, device=device, threads=threads, quiet=True)
        if variant == "fp64":
            model_input = _as_float64(model_input)
        return train_vae(model_input, config, progress=False)
    finally:
        torch.randn_like = original_randn_like  # type: ignore[assignment]
        model_module.nn.Dropout = original_dropout  # type: ignore[misc]
        torch.set_default_dtype(original_default)


def _as_float64(model_input: ModelInput) -> ModelInput:
    class Float64Input:
        def __getattr__(self, name: str) -> object:
            return getattr(model_input, name)

        def feature_matrix(self) -> np.ndarray:
            return model_input.feature_matrix().astype(np.float64)

        @property
        def weights(self) -> np.ndarray:
            return model_input.weights.astype(np.float64)

    return Float64Input()  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", type=Path)
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare", nargs=2, type=Path, help="max |diff| of two latents")
    parser.add_argument("runs", nargs="*")
    args = parser.parse_args()
    if args.compare:
        first, second = (np.load(path) for path in args.compare)
        print(f"max |diff| {float(np.abs(first - second).max()):.3g}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    features = load_features(args.features)
    model_input = build_model_input(
        features.composition, features.depths, features.lengths, features.names, EncodeConfig()
    )
    truth = read_cami_binning(args.truth)
    lengths = read_truth_lengths(args.truth)
    names = model_input.names.astype(str)
    table = args.out / "runs.tsv"
    if not table.exists():
        table.write_text("run\tnc\tari\tbinned_bp\tfinal_loss\ttrain_s\tcluster_s\tbelow_nc\n")
    for spec in args.runs:
        device, seed, variant = spec.split(":")
        started = time.perf_counter()
        result = _train(model_input, device, int(seed), variant, args.threads)
        trained = time.perf_counter()
        latent = result.latent_means.astype(np.float32)
        np.save(args.out / f"latent_{device}_{seed}_{variant}.npy", latent)
        clustering = cluster_latent(
            latent, model_input.contig_lengths, names, ClusterConfig(threads=args.threads)
        )
        scores = evaluate_bins(truth, lengths, clustering.contig_bins(names))
        below = ",".join(
            f"{s.genome}={s.completeness:.2f}/{s.purity:.2f}"
            for s in scores.genomes
            if s.completeness > 0.5 and not (s.completeness > 0.9 and s.purity > 0.95)
        )
        line = (
            f"{spec}\t{scores.near_complete}\t{scores.adjusted_rand_index:.4f}\t"
            f"{scores.binned_bp / scores.total_bp:.4f}\t{result.loss_history[-1]['loss']:.5f}\t"
            f"{trained - started:.1f}\t{time.perf_counter() - trained:.1f}\t{below}"
        )
        print(line, flush=True)
        with table.open("a") as handle:
            handle.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
