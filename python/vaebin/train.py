"""Train the VAE on a `ModelInput`, encode contigs to latent means, save and load models."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaebin.encode import ModelInput, NormalisationStats
from vaebin.errors import FormatError, InputDataError, ParameterError
from vaebin.model import VAE, ModelConfig
from vaebin.progress import Progress
from vaebin.train_config import TrainConfig

_CHECKPOINT_FORMAT = "vaebin-model"
_CHECKPOINT_VERSION = 1
_ENCODE_BATCH_SIZE = 4096


@dataclass
class TrainedModel:
    """A trained VAE with everything needed to encode new data the same way."""

    vae: VAE
    model_config: ModelConfig
    train_config: TrainConfig
    stats: NormalisationStats
    # Per-feature range used to map features to [0, 1] for sigmoid-output models; else None.
    feature_low: np.ndarray | None = None
    feature_high: np.ndarray | None = None


@dataclass
class TrainResult:
    """Outcome of `train_vae`."""

    latent_means: np.ndarray
    loss_history: list[dict[str, float]]
    model: TrainedModel
    device: str
    seconds: float
    final_batch_size: int = 0


def resolve_device(requested: str) -> torch.device:
    """Map auto|cpu|cuda to a torch device, refusing cuda when none is available."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(
                "device cuda was requested but PyTorch sees no usable CUDA GPU; "
                "use --device cpu or auto"
            )
        return torch.device("cuda")
    raise ParameterError(f"unknown device {requested!r}; choose auto, cpu or cuda")


def _set_deterministic(mode: bool, warn_only: bool) -> None:
    """torch.use_deterministic_algorithms without its import of torch._inductor.config.

    That import pulls in torch._dynamo, sympy and triton (about 150 MB of RSS) only to set the
    compiler's flag; nothing here compiles, so the flag is set on torch's core alone unless the
    compiler is already loaded (then through the public function, which sets both).
    """
    if "torch._inductor.config" not in sys.modules and hasattr(
        torch._C, "_set_deterministic_algorithms"
    ):
        torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)


@contextmanager
def _reproducible(seed: int, threads: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch and pin its threads for the duration, restoring global state afterwards."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if device.type == "cuda":
        # cuBLAS is only deterministic with a fixed workspace; must be set before it starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        if threads is not None:
            torch.set_num_threads(max(1, threads))
        _set_deterministic(True, warn_only=True)
        try:
            yield
        finally:
            _set_deterministic(previous_deterministic, warn_only=previous_warn_only)
            torch.set_num_threads(previous_threads)


def _scaled_features(
    matrix: np.ndarray, low: np.ndarray | None, high: np.ndarray | None
) -> np.ndarray:
    if low is None or high is None:
        return matrix
    span = np.where(high > low, high - low, 1.0)
    return np.clip((matrix - low) / span, 0.0, 1.0).astype(np.float32)


def _model_features(model: TrainedModel, model_input: ModelInput) -> np.ndarray:
    return _scaled_features(model_input.feature_matrix(), model.feature_low, model.feature_high)


class LeanAdam:
    """Adam (Kingma & Ba; torch's defaults: betas 0.9/0.999, eps 1e-8, no weight decay) in plain
    tensor operations, in the order torch.optim.Adam uses them, so the parameters it gives are
    bit for bit those of torch.optim.Adam (tests/test_model.py checks it).

    Why not torch.optim.Adam itself: creating any torch.optim optimizer imports torch._dynamo,
    and with it sympy, triton and torch.distributed (about 900 modules), which raised the peak
    RSS of a binning run by 150 MB (527 -> 677 MB right after creating it) for no use here.
    """

    def __init__(
        self,
        parameters: Iterator[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.parameters = list(parameters)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.steps = 0
        self.first_moments = [torch.zeros_like(p) for p in self.parameters]
        self.second_moments = [torch.zeros_like(p) for p in self.parameters]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for parameter in self.parameters:
            if set_to_none:
                parameter.grad = None
            elif parameter.grad is not None:
                parameter.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.steps)
        second_correction_root = (1 - beta2**self.steps) ** 0.5
        moments = zip(self.parameters, self.first_moments, self.second_moments, strict=True)
        for parameter, first, second in moments:
            if parameter.grad is None:
                continue
            gradient = parameter.grad
            first.lerp_(gradient, 1 - beta1)
            second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
            denominator = (second.sqrt() / second_correction_root).add_(self.eps)
            parameter.addcdiv_(first, denominator, value=-step_size)


def train_vae(
    model_input: ModelInput,
    config: TrainConfig | None = None,
    progress: bool | None = None,
    model_config: ModelConfig | None = None,
) -> TrainResult:
    """Train a VAE on `model_input` and return the latent means of its contigs.

    `progress` None shows a progress bar on a terminal and a log line every 30 s elsewhere
    (`vaebin.progress`); True forces the bar, False the log lines; `config.quiet` silences both.
    `model_config` overrides the architecture of the preset.
    """
    config = (config or TrainConfig()).resolved(model_input.n_samples)
    epochs, doubling = int(config.epochs or 0), set(config.batch_doubling_epochs or ())
    if epochs < 1 or config.batch_size < 1 or config.lr <= 0:
        raise ParameterError(
            "epochs and batch size must be at least 1 and the learning rate positive"
        )
    model_config = model_config or ModelConfig.for_preset(config.preset, model_input.n_samples)
    device = resolve_device(config.device)
    n_contigs = model_input.n_contigs
    matrix = model_input.feature_matrix()
    feature_low = feature_high = None
    if model_config.output == "sigmoid":
        feature_low = matrix.min(axis=0)
        feature_high = matrix.max(axis=0)
        matrix = _scaled_features(matrix, feature_low, feature_high)

    started = time.perf_counter()
    history: list[dict[str, float]] = []
    with _reproducible(config.seed, config.threads, device):
        vae = VAE(model_input.n_samples, model_input.n_composition, model_config).to(device)
        optimizer = LeanAdam(vae.parameters(), lr=config.lr)
        features = torch.from_numpy(np.ascontiguousarray(matrix)).to(device)
        weights = torch.from_numpy(model_input.weights).to(device)
        shuffler = torch.Generator().manual_seed(config.seed)
        batch_size = min(config.batch_size, n_contigs)
        vae.train()
        if n_contigs == 1:
            # Batch norm cannot estimate statistics from one row: use its running values.
            for module in vae.modules():
                if isinstance(module, torch.nn.BatchNorm1d):
                    module.eval()
        with Progress(
            "training",
            epochs,
            "epoch",
            quiet=config.quiet,
            bar=None if progress is None else progress and not config.quiet,
        ) as bar:
            for epoch in range(epochs):
                if epoch in doubling:
                    batch_size = min(batch_size * 2, n_contigs)
                order = torch.randperm(n_contigs, generator=shuffler).to(device)
                # Drop the incomplete last batch (it is a different one each epoch), but never
                # the only batch there is.
                n_batches = max(1, n_contigs // batch_size)
                sums: dict[str, torch.Tensor] = {}
                for batch_index in range(n_batches):
                    rows = order[batch_index * batch_size : (batch_index + 1) * batch_size]
                    batch_features = features[rows]
                    optimizer.zero_grad(set_to_none=True)
                    output = vae(batch_features)
                    loss = vae.loss(batch_features, output, weights[rows])
                    loss.total.backward()
                    optimizer.step()
                    for name, value in {"loss": loss.total, **loss.terms}.items():
                        sums[name] = sums.get(name, 0.0) + value.detach()
                epoch_means = {name: float(total) / n_batches for name, total in sums.items()}
                history.append(epoch_means)
                bar.update(1, loss=epoch_means["loss"], batch=batch_size)
        vae.eval()

    trained = TrainedModel(
        vae=vae,
        model_config=model_config,
        train_config=config,
        stats=model_input.stats,
        feature_low=feature_low,
        feature_high=feature_high,
    )
    latent_means = encode_latent(trained, model_input)
    return TrainResult(
        latent_means=latent_means,
        loss_history=history,
        model=trained,
        device=str(device),
        seconds=time.perf_counter() - started,
        final_batch_size=batch_size,
    )


def encode_latent(model: TrainedModel, model_input: ModelInput) -> np.ndarray:
    """Latent means (contigs x latent size, float32) of `model_input` under a trained model."""
    vae = model.vae
    if model_input.n_samples != vae.n_samples or model_input.n_composition != vae.n_composition:
        raise InputDataError(
            f"the model expects {vae.n_samples} samples and {vae.n_composition} composition "
            f"columns, the data has {model_input.n_samples} and {model_input.n_composition}"
        )
    if not model_input.stats.matches(model.stats):
        raise ValueError(
            "the data was normalised with other statistics than the model's training data; "
            "build it with build_model_input(..., stats=model.stats)"
        )
    device = next(vae.parameters()).device
    matrix = _model_features(model, model_input)
    latent = np.empty((model_input.n_contigs, vae.config.latent_size), dtype=np.float32)
    vae.eval()
    with torch.no_grad():
        for start in range(0, model_input.n_contigs, _ENCODE_BATCH_SIZE):
            chunk = torch.from_numpy(
                np.ascontiguousarray(matrix[start : start + _ENCODE_BATCH_SIZE])
            )
            mu, _ = vae.encode(chunk.to(device))
            latent[start : start + len(chunk)] = mu.cpu().numpy()
    return latent


def save_model(path: str | Path, model: TrainedModel) -> None:
    """Write weights, configuration and normalisation statistics to `path` (atomically)."""
    path = Path(path)
    state = {name: tensor.detach().cpu() for name, tensor in model.vae.state_dict().items()}
    checkpoint = {
        "format": _CHECKPOINT_FORMAT,
        "version": _CHECKPOINT_VERSION,
        "n_samples": model.vae.n_samples,
        "n_composition": model.vae.n_composition,
        "model_config": model.model_config.to_dict(),
        "train_config": model.train_config.to_dict(),
        "stats": model.stats.to_dict(),
        "feature_low": None if model.feature_low is None else model.feature_low.tolist(),
        "feature_high": None if model.feature_high is None else model.feature_high.tolist(),
        "state_dict": state,
    }
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(checkpoint, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_model(path: str | Path, device: str = "cpu") -> TrainedModel:
    """Read a model written by `save_model`, ready for `encode_latent`."""
    try:
        checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a file that is not a checkpoint
        raise FormatError(f"{path}: not a readable vaebin model ({error})") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != _CHECKPOINT_FORMAT:
        raise FormatError(f"{path}: not a vaebin model file")
    if checkpoint.get("version") != _CHECKPOINT_VERSION:
        raise FormatError(f"{path}: unsupported vaebin model version {checkpoint.get('version')}")
    model_config = ModelConfig.from_dict(checkpoint["model_config"])
    train_values = dict(checkpoint["train_config"])
    if train_values.get("batch_doubling_epochs") is not None:
        train_values["batch_doubling_epochs"] = tuple(train_values["batch_doubling_epochs"])
    vae = VAE(checkpoint["n_samples"], checkpoint["n_composition"], model_config)
    vae.load_state_dict(checkpoint["state_dict"])
    vae.to(resolve_device(device)).eval()

    def as_array(values: list[float] | None) -> np.ndarray | None:
        return None if values is None else np.asarray(values, dtype=np.float32)

    return TrainedModel(
        vae=vae,
        model_config=model_config,
        train_config=TrainConfig(**train_values),
        stats=NormalisationStats.from_dict(checkpoint["stats"]),
        feature_low=as_array(checkpoint["feature_low"]),
        feature_high=as_array(checkpoint["feature_high"]),
    )
