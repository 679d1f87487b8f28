"""The VAE, its loss (checked against hand-computed values) and training."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vaebin.cluster import ClusterConfig, cluster_latent
from vaebin.encode import ModelInput, build_model_input
from vaebin.errors import FormatError, ParameterError
from vaebin.model import VAE, ModelConfig, VAEOutput, block_loss_weights, kl_divergence, vae_loss
from vaebin.train import (
    LeanAdam,
    TrainConfig,
    encode_latent,
    load_model,
    save_model,
    train_vae,
)

# On the CPU also where a GPU is present: the round trips compare bit for bit.
FAST = TrainConfig(
    epochs=4, batch_size=16, batch_doubling_epochs=(2,), threads=1, device="cpu", quiet=True
)
TINY = ModelConfig(hidden_sizes=(16, 16), latent_size=4)


def synthetic_input(
    n_genomes: int = 3, per_genome: int = 20, n_samples: int = 3, seed: int = 0
) -> ModelInput:
    """Contigs of a few genomes with distinct composition and abundance profiles."""
    rng = np.random.default_rng(seed)
    genome = np.repeat(np.arange(n_genomes), per_genome)
    profiles = rng.dirichlet(np.ones(136), size=n_genomes)
    composition = np.stack([rng.dirichlet(profiles[g] * 2000) for g in genome]).astype(np.float32)
    abundance = rng.lognormal(1.0, 1.0, size=(n_genomes, n_samples))
    depths = abundance[genome] * rng.gamma(20.0, 1 / 20.0, size=(genome.size, n_samples))
    lengths = rng.integers(2000, 20_000, size=genome.size)
    names = [f"g{g}_c{i}" for i, g in enumerate(genome)]
    return build_model_input(composition, depths, lengths, names)


# --- loss terms against hand-computed values ---------------------------------------------------


def test_block_loss_by_hand() -> None:
    config = ModelConfig(latent_size=2, composition_share=0.15, kl_beta=200.0)
    # Rows: abundance (2 samples), composition (2 columns), total abundance.
    features = torch.tensor([[0.25, 0.75, 1.0, -1.0, 0.5], [0.25, 0.75, 1.0, -1.0, 0.5]])
    decoded = torch.tensor([[0.0, 0.0, 0.5, -1.0, 1.5], [0.0, 0.0, 0.5, -1.0, 1.5]])
    mu = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    output = VAEOutput(decoded=decoded, mu=mu, logvar=None)
    loss = vae_loss(config, 2, 2, features, output, torch.tensor([2.0, 0.0]))
    # softmax(0, 0) = (1/2, 1/2): cross-entropy ln 2, times 0.85 * 1 / (2 ln 2) = 0.425.
    assert loss.terms["abundance"].item() == pytest.approx(0.425)
    # Composition SSE 0.25 times 0.15 / 2.
    assert loss.terms["composition"].item() == pytest.approx(0.25 * 0.075)
    # Total abundance SSE 1 times 0.85 / 2.
    assert loss.terms["total_abundance"].item() == pytest.approx(0.425)
    # KL with unit variance: (1 + 4) / 2, times 1 / (2 * 200).
    assert loss.terms["kl"].item() == pytest.approx(2.5 / 400)
    # Per row 0.875; length weights 2 and 0 -> mean 0.875.
    assert loss.total.item() == pytest.approx(0.875)


def test_block_weights_one_sample_ignore_abundance_profile() -> None:
    weights = block_loss_weights(ModelConfig(composition_share=0.5), 1, 136)
    assert weights["abundance"] == 0.0
    assert weights["total_abundance"] == pytest.approx(0.5)
    assert weights["composition"] == pytest.approx(0.5 / 136)
    three = block_loss_weights(ModelConfig(), 3, 103)
    assert three["abundance"] == pytest.approx(0.85 * 2 / (3 * math.log(3)))


def test_learned_variance_kl_by_hand() -> None:
    mu = torch.tensor([[0.0, 1.0]])
    logvar = torch.tensor([[math.log(2.0), 0.0]])
    # 0.5 * (0 + 2 - 1 - ln 2) + 0.5 * (1 + 1 - 1 - 0)
    expected = 0.5 * (1 - math.log(2.0)) + 0.5
    assert kl_divergence(mu, logvar).item() == pytest.approx(expected)


def test_article_loss_by_hand() -> None:
    config = ModelConfig.for_preset("article", n_samples=1)
    features = torch.tensor([[0.5, 0.5, 1.0]])
    output = VAEOutput(
        decoded=torch.zeros(1, 3), mu=torch.tensor([[1.0] + [0.0] * 7]), logvar=torch.zeros(1, 8)
    )
    loss = vae_loss(config, 1, 1, features, output, torch.tensor([5.0]))
    # sigmoid(0) = 0.5: MSE (0 + 0 + 0.25) / 3; KL 0.5 times kl_weight; no length weighting.
    assert loss.terms["mse"].item() == pytest.approx(0.25 / 3)
    assert loss.total.item() == pytest.approx(0.25 / 3 + config.kl_weight * 0.5)


def test_presets() -> None:
    article = ModelConfig.for_preset("article", 3)
    assert (article.latent_size, article.output, article.activation) == (8, "sigmoid", "relu")
    default = ModelConfig.for_preset("default", 3)
    assert (default.hidden_sizes, default.latent_size, default.batch_norm) == ((512, 512), 32, True)
    assert ModelConfig.for_preset("default", 1).composition_share == 0.5
    assert TrainConfig.for_preset("article").batch_size == 1024
    assert TrainConfig.for_preset("article").epochs == 50
    assert TrainConfig.for_preset("article").resolved(1).batch_doubling_epochs == ()


def test_default_epochs_follow_the_number_of_samples_and_doublings_the_epochs() -> None:
    several = TrainConfig().resolved(3)
    assert (several.epochs, several.batch_doubling_epochs) == (100, (8, 25, 50, 75))
    one = TrainConfig().resolved(1)
    assert (one.epochs, one.batch_doubling_epochs) == (200, (16, 50, 100, 150))
    # Epochs that are asked for are kept, doublings scale with them unless they are given too.
    asked = TrainConfig(epochs=300).resolved(1)
    assert (asked.epochs, asked.batch_doubling_epochs) == (300, (24, 75, 150, 225))
    fixed = TrainConfig(epochs=10, batch_doubling_epochs=(2,)).resolved(1)
    assert (fixed.epochs, fixed.batch_doubling_epochs) == (10, (2,))
    assert TrainConfig().to_dict()["epochs"] is None
    assert TrainConfig().resolved(2).to_dict()["batch_doubling_epochs"] == [8, 25, 50, 75]
    with pytest.raises(ParameterError, match="unknown model preset"):
        ModelConfig.for_preset("huge", 3)


def test_forward_shapes_and_reconstruction_activations() -> None:
    vae = VAE(3, 136, TINY).eval()
    features = torch.randn(5, 140)
    output = vae(features)
    assert output.decoded.shape == (5, 140)
    assert output.mu.shape == (5, 4)
    reconstruction = vae.reconstruct(output.decoded)
    torch.testing.assert_close(reconstruction[:, :3].sum(dim=1), torch.ones(5))


# --- training -----------------------------------------------------------------------------------


def test_training_is_deterministic_on_cpu() -> None:
    model_input = synthetic_input()
    first = train_vae(model_input, FAST, progress=False, model_config=TINY)
    second = train_vae(model_input, FAST, progress=False, model_config=TINY)
    np.testing.assert_array_equal(first.latent_means, second.latent_means)
    assert first.latent_means.dtype == np.float32
    assert first.latent_means.shape == (60, 4)
    config = ClusterConfig(min_cluster_size=5, min_bin_size=0)
    labels = [
        cluster_latent(result.latent_means, model_input.contig_lengths, model_input.names, config)
        for result in (first, second)
    ]
    np.testing.assert_array_equal(labels[0].labels, labels[1].labels)
    other = train_vae(model_input, replace(FAST, seed=1), progress=False, model_config=TINY)
    assert not np.array_equal(first.latent_means, other.latent_means)


def test_training_lowers_the_loss_and_doubles_the_batch() -> None:
    model_input = synthetic_input()
    config = replace(FAST, epochs=12, batch_doubling_epochs=(3, 6))
    result = train_vae(model_input, config, progress=False, model_config=TINY)
    assert len(result.loss_history) == 12
    assert result.loss_history[-1]["loss"] < result.loss_history[0]["loss"]
    assert set(result.loss_history[0]) == {
        "loss",
        "abundance",
        "composition",
        "total_abundance",
        "kl",
    }
    assert result.final_batch_size == 60  # 16 -> 32 -> 64, capped at the 60 contigs


def test_save_load_round_trip_and_reuse_on_new_data(tmp_path: Path) -> None:
    model_input = synthetic_input()
    result = train_vae(model_input, FAST, progress=False, model_config=TINY)
    path = tmp_path / "model.pt"
    save_model(path, result.model)
    loaded = load_model(path)
    np.testing.assert_array_equal(encode_latent(loaded, model_input), result.latent_means)
    assert loaded.train_config == FAST
    assert loaded.model_config == TINY

    # New contigs from the same samples, normalised with the saved statistics.
    rng = np.random.default_rng(5)
    composition = rng.dirichlet(np.ones(136), size=7).astype(np.float32)
    new_input = build_model_input(
        composition, rng.random((7, 3)), np.full(7, 5000), list("abcdefg"), stats=loaded.stats
    )
    latent = encode_latent(loaded, new_input)
    assert latent.shape == (7, 4)
    assert np.all(np.isfinite(latent))
    own_stats = build_model_input(
        composition, rng.random((7, 3)), np.full(7, 5000), list("abcdefg")
    )
    with pytest.raises(ValueError, match="other statistics"):
        encode_latent(loaded, own_stats)


def test_article_preset_trains_and_round_trips(tmp_path: Path) -> None:
    model_input = synthetic_input()
    config = TrainConfig.for_preset("article", epochs=3, threads=1, device="cpu", quiet=True)
    result = train_vae(model_input, config, progress=False)
    assert result.latent_means.shape == (60, 8)
    assert result.model.feature_low is not None
    save_model(tmp_path / "article.pt", result.model)
    loaded = load_model(tmp_path / "article.pt")
    np.testing.assert_array_equal(encode_latent(loaded, model_input), result.latent_means)


@pytest.mark.parametrize("n_contigs", [1, 2, 3, 10])
def test_few_contigs_train_without_crashing(n_contigs: int) -> None:
    model_input = synthetic_input(n_genomes=1, per_genome=n_contigs)
    result = train_vae(model_input, replace(FAST, batch_size=256), progress=False)
    assert result.latent_means.shape == (n_contigs, 32)
    assert np.all(np.isfinite(result.latent_means))


def test_one_sample_and_all_zero_depths_train() -> None:
    rng = np.random.default_rng(0)
    composition = rng.dirichlet(np.ones(136), size=12).astype(np.float32)
    for depths in (rng.random(12), np.zeros((12, 2))):
        model_input = build_model_input(
            composition, depths, np.full(12, 3000), list("abcdefghijkl")
        )
        result = train_vae(model_input, FAST, progress=False, model_config=TINY)
        assert np.all(np.isfinite(result.latent_means))


def test_cuda_requested_without_a_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ParameterError, match="no usable CUDA GPU"):
        train_vae(synthetic_input(), replace(FAST, device="cuda"), progress=False)


def test_load_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "not_a_model.pt"
    path.write_text("hello")
    with pytest.raises(FormatError, match="not a"):
        load_model(path)


def test_lean_adam_gives_torch_adams_parameters_bit_for_bit() -> None:
    """LeanAdam replaces torch.optim.Adam only to keep torch._dynamo unloaded (150 MB)."""

    def trained(make_optimizer) -> list[torch.Tensor]:
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(20, 32), torch.nn.BatchNorm1d(32), torch.nn.LeakyReLU(),
            torch.nn.Linear(32, 5),
        )  # fmt: skip
        inputs, targets = torch.randn(64, 20), torch.randn(64, 5)
        optimizer = make_optimizer(net.parameters())
        for _ in range(50):
            optimizer.zero_grad(set_to_none=True)
            ((net(inputs) - targets) ** 2).mean().backward()
            optimizer.step()
        return [parameter.detach().clone() for parameter in net.parameters()]

    ours = trained(lambda parameters: LeanAdam(parameters, lr=3e-3))
    for foreach in (False, True):
        reference = trained(lambda p, f=foreach: torch.optim.Adam(p, lr=3e-3, foreach=f))
        assert all(torch.equal(a, b) for a, b in zip(ours, reference, strict=True))
    assert not torch.equal(ours[0], trained(lambda p: LeanAdam(p, lr=1e-3))[0])


def test_training_leaves_torch_dynamo_unloaded() -> None:
    code = (
        "import sys; from test_model import FAST, TINY, synthetic_input; "
        "from vaebin.train import train_vae; "
        "train_vae(synthetic_input(), FAST, model_config=TINY); "
        "print('torch._dynamo' in sys.modules)"
    )
    tests = Path(__file__).resolve().parent
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tests, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
