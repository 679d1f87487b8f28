"""Training on a CUDA GPU (`--device cuda`). Skipped where PyTorch sees no GPU, as in CI.

`benchmarks/gpu_check.sh` runs these on a GPU machine together with the real-genome community.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vaebin.simulate import SimulationConfig, simulate_community
from vaebin.train import TrainConfig, encode_latent, load_model, save_model, train_vae

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# The installed entry point beside this Python, else the one on PATH (a --target install).
CLI = os.path.join(os.path.dirname(sys.executable), "vaebin-rs")
if not os.path.exists(CLI):
    CLI = shutil.which("vaebin-rs") or CLI
GPU = TrainConfig(epochs=6, batch_size=16, batch_doubling_epochs=(3,), device="cuda", quiet=True)


def synthetic():
    # The CPU tests' generator: three genomes with distinct composition and abundance.
    from test_model import synthetic_input

    return synthetic_input(n_genomes=4, per_genome=40, n_samples=3, seed=5)


def test_cuda_training_runs_on_the_gpu_and_repeats_exactly() -> None:
    model_input = synthetic()
    first = train_vae(model_input, GPU, progress=False)
    second = train_vae(model_input, GPU, progress=False)
    assert first.device.startswith("cuda")
    assert next(first.model.vae.parameters()).is_cuda
    assert np.isfinite(first.latent_means).all()
    assert all(np.isfinite(row["loss"]) for row in first.loss_history)
    # Same seed on the same GPU: deterministic kernels and a fixed cuBLAS workspace.
    np.testing.assert_array_equal(first.latent_means, second.latent_means)


def test_model_trained_on_gpu_encodes_the_same_on_cpu(tmp_path: Path) -> None:
    model_input = synthetic()
    trained = train_vae(model_input, GPU, progress=False)
    save_model(tmp_path / "model.pt", trained.model)
    on_cpu = load_model(tmp_path / "model.pt", device="cpu")
    assert not next(on_cpu.vae.parameters()).is_cuda
    np.testing.assert_allclose(
        encode_latent(on_cpu, model_input), trained.latent_means, rtol=1e-4, atol=1e-4
    )


def test_cpu_and_gpu_training_reach_the_same_loss() -> None:
    model_input = synthetic()
    config = replace(GPU, epochs=20)
    on_gpu = train_vae(model_input, config, progress=False)
    on_cpu = train_vae(model_input, replace(config, device="cpu", threads=1), progress=False)
    # Different kernels, so not bit-identical, but the same optimisation from the same start.
    assert on_gpu.loss_history[-1]["loss"] == pytest.approx(
        on_cpu.loss_history[-1]["loss"], rel=0.05
    )


def test_bin_with_device_cuda_end_to_end(tmp_path: Path) -> None:
    community = simulate_community(tmp_path / "toy", SimulationConfig.toy(seed=3))
    bams = [arg for bam in community.bams for arg in ("--bam", str(bam))]
    outdir = tmp_path / "out"
    command = [CLI, "bin", "--contigs", str(community.contigs_fasta), *bams]
    command += ["--outdir", str(outdir), "--device", "cuda", "--epochs", "30", "--quiet"]
    command += ["--min-bin-size", "50000"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    summary = json.loads((outdir / "summary.json").read_text())
    assert summary["device"].startswith("cuda")
    report = tmp_path / "scores.json"
    scores = ["--bins", str(outdir / "clusters.tsv"), "--json", str(report)]
    evaluated = subprocess.run(
        [CLI, "evaluate", "--truth", str(community.truth_binning), *scores],
        capture_output=True,
        text=True,
        check=False,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    # The same quality bar as the CPU test of the toy community.
    assert json.loads(report.read_text())["counts"]["0.5/0.9"] >= 4
