"""The variational autoencoder: architecture presets and the loss.

Input rows are the concatenation built by `vaebin.encode.ModelInput.feature_matrix`:
`n_samples` relative abundances, `n_composition` composition values, 1 total abundance.

Two presets:

* ``article``: the baseline of the article the project grew from: a ReLU MLP, latent size 8,
  sigmoid output on features scaled to [0, 1], mean squared error plus a weighted KL divergence,
  log-variance passed through softplus as the article does.
* ``default``: VAMB's design as the reference point: two hidden layers with batch norm and
  dropout, latent size 32, one loss term per feature block (cross-entropy on the abundance
  profile, squared error on composition and total abundance), weighted by contig length, and a
  KL term scaled by 1 / (latent size x beta).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional

from vaebin.errors import ParameterError
from vaebin.train_config import PRESETS


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and loss weights of the VAE."""

    preset: str = "default"
    hidden_sizes: tuple[int, ...] = (512, 512)
    latent_size: int = 32
    activation: str = "leaky_relu"
    dropout: float = 0.2
    batch_norm: bool = True
    # "blocks": softmax over abundances, linear composition and total abundance (z-scored input).
    # "sigmoid": every feature through a sigmoid (input scaled to [0, 1]).
    output: str = "blocks"
    # "none": unit variance noise, KL on the means only (VAMB); "learned"; "softplus" (article).
    variance: str = "none"
    # Approximate share of composition in the reconstruction loss (VAMB's alpha).
    composition_share: float = 0.15
    # KL divergence is multiplied by 1 / (latent_size * kl_beta) in the "blocks" loss.
    kl_beta: float = 200.0
    # KL multiplier of the "sigmoid" (article) loss: MSE + kl_weight * KL; the article leaves it
    # to tuning, 1e-4 was the best of 1e-1..1e-4 measured (benchmarks/dev/NOTES.md).
    kl_weight: float = 1e-4
    length_weighted: bool = True

    @classmethod
    def for_preset(cls, preset: str, n_samples: int) -> ModelConfig:
        """The architecture of `preset` for data with `n_samples` samples."""
        if preset == "article":
            return cls(
                preset="article",
                hidden_sizes=(128, 128),
                latent_size=8,
                activation="relu",
                dropout=0.0,
                batch_norm=False,
                output="sigmoid",
                variance="softplus",
                length_weighted=False,
            )
        if preset == "default":
            if n_samples > 1:
                return cls()
            # One sample carries little abundance signal: composition gets half the loss and a
            # smaller network suffices (VAMB's choices); dropout stays, as it measured better.
            return cls(hidden_sizes=(256, 256), composition_share=0.5)
        raise ParameterError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")

    def to_dict(self) -> dict[str, object]:
        """Plain-python form, for checkpoints."""
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelConfig:
        """Inverse of `to_dict`."""
        values = dict(data)
        values["hidden_sizes"] = tuple(values["hidden_sizes"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


@dataclass
class VAEOutput:
    """What one forward pass returns: decoder output before activations, latent mean, log-var."""

    decoded: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor | None


@dataclass
class LossTerms:
    """The loss to minimise and its parts (batch means, before length weighting)."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU()
    raise ParameterError(f"unknown activation {name!r}; choose relu or leaky_relu")


def _mlp(sizes: list[int], config: ModelConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size_in, size_out in itertools.pairwise(sizes):
        layers.append(nn.Linear(size_in, size_out))
        if config.batch_norm:
            layers.append(nn.BatchNorm1d(size_out))
        layers.append(_activation(config.activation))
        if config.dropout > 0:
            layers.append(nn.Dropout(config.dropout))
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Variational autoencoder over abundance, composition and total-abundance features."""

    def __init__(self, n_samples: int, n_composition: int, config: ModelConfig) -> None:
        super().__init__()
        if n_samples < 1 or n_composition < 1:
            raise ParameterError("the VAE needs at least one sample and one composition column")
        if config.output not in ("blocks", "sigmoid"):
            raise ParameterError(f"unknown output {config.output!r}; choose blocks or sigmoid")
        if config.variance not in ("none", "learned", "softplus"):
            raise ParameterError(f"unknown variance {config.variance!r}")
        if not 0 < config.composition_share < 1:
            raise ParameterError("composition_share must be between 0 and 1")
        if config.latent_size < 1 or any(size < 1 for size in config.hidden_sizes):
            raise ParameterError("layer sizes must be at least 1")
        self.config = config
        self.n_samples = n_samples
        self.n_composition = n_composition
        self.n_features = n_samples + n_composition + 1
        hidden = list(config.hidden_sizes)
        self.encoder = _mlp([self.n_features, *hidden], config)
        self.mu_layer = nn.Linear(hidden[-1], config.latent_size)
        self.logvar_layer = (
            nn.Linear(hidden[-1], config.latent_size) if config.variance != "none" else None
        )
        self.decoder = _mlp([config.latent_size, *hidden[::-1]], config)
        self.output_layer = nn.Linear(hidden[0], self.n_features)

    def encode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latent mean and log-variance (None when the variance is fixed at 1)."""
        hidden = self.encoder(features)
        mu = self.mu_layer(hidden)
        if self.logvar_layer is None:
            return mu, None
        logvar = self.logvar_layer(hidden)
        if self.config.variance == "softplus":
            logvar = functional.softplus(logvar)
        return mu, logvar

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Decoder output before the output activations."""
        return self.output_layer(self.decoder(latent))

    def reconstruct(self, decoded: torch.Tensor) -> torch.Tensor:
        """Apply the output activations to a decoder output."""
        if self.config.output == "sigmoid":
            return torch.sigmoid(decoded)
        abundance = torch.softmax(decoded[:, : self.n_samples], dim=1)
        return torch.cat([abundance, decoded[:, self.n_samples :]], dim=1)

    def forward(self, features: torch.Tensor) -> VAEOutput:
        """Encode, sample with the reparameterisation trick when training, decode."""
        mu, logvar = self.encode(features)
        latent = mu
        if self.training:
            noise = torch.randn_like(mu)
            latent = mu + noise if logvar is None else mu + noise * torch.exp(0.5 * logvar)
        return VAEOutput(decoded=self.decode(latent), mu=mu, logvar=logvar)

    def loss(
        self, features: torch.Tensor, output: VAEOutput, weights: torch.Tensor | None = None
    ) -> LossTerms:
        """Loss of a batch; see `vae_loss`."""
        return vae_loss(self.config, self.n_samples, self.n_composition, features, output, weights)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per row; with a fixed unit variance only the mean term remains."""
    if logvar is None:
        return 0.5 * mu.pow(2).sum(dim=1)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def block_loss_weights(config: ModelConfig, n_samples: int, n_composition: int) -> dict[str, float]:
    """Multipliers of the per-block terms of the "blocks" loss.

    Each term is divided by its typical size so that `composition_share` really is the share of
    composition in the reconstruction loss: cross-entropy of an n-sample profile scales with
    log(n), squared errors with the number of columns.
    """
    abundance_share = 1.0 - config.composition_share
    if n_samples > 1:
        cross_entropy = abundance_share * (n_samples - 1) / (n_samples * math.log(n_samples))
    else:
        # One sample: the relative abundance is always 1 and carries nothing to learn.
        cross_entropy = 0.0
    return {
        "abundance": cross_entropy,
        "total_abundance": abundance_share / n_samples,
        "composition": config.composition_share / n_composition,
        "kl": 1.0 / (config.latent_size * config.kl_beta),
    }


def vae_loss(
    config: ModelConfig,
    n_samples: int,
    n_composition: int,
    features: torch.Tensor,
    output: VAEOutput,
    weights: torch.Tensor | None = None,
) -> LossTerms:
    """Loss of a batch of feature rows given the model's output and per-row length weights."""
    kl = kl_divergence(output.mu, output.logvar)
    if config.output == "sigmoid":
        mse = (torch.sigmoid(output.decoded) - features).pow(2).mean(dim=1)
        per_row = mse + config.kl_weight * kl
        terms = {"mse": mse.mean(), "kl": (config.kl_weight * kl).mean()}
    else:
        multipliers = block_loss_weights(config, n_samples, n_composition)
        composition_end = n_samples + n_composition
        abundance_in = features[:, :n_samples]
        log_probabilities = functional.log_softmax(output.decoded[:, :n_samples], dim=1)
        cross_entropy = -(abundance_in * log_probabilities).sum(dim=1)
        composition_sse = (
            (output.decoded[:, n_samples:composition_end] - features[:, n_samples:composition_end])
            .pow(2)
            .sum(dim=1)
        )
        total_sse = (output.decoded[:, composition_end] - features[:, composition_end]).pow(2)
        parts = {
            "abundance": multipliers["abundance"] * cross_entropy,
            "composition": multipliers["composition"] * composition_sse,
            "total_abundance": multipliers["total_abundance"] * total_sse,
            "kl": multipliers["kl"] * kl,
        }
        per_row = parts["abundance"] + parts["composition"] + parts["total_abundance"] + parts["kl"]
        terms = {name: value.mean() for name, value in parts.items()}
    if weights is not None and config.length_weighted:
        per_row = per_row * weights
    return LossTerms(total=per_row.mean(), terms=terms)
