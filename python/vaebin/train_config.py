"""Settings of the training stage, free of torch so the CLI can show them without loading it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from vaebin.errors import ParameterError

# Model presets: the tuned default and the article's baseline VAE.
PRESETS = ("default", "article")

# Epochs of the default preset. With several samples 100 bin as well as 300 on the simulated
# communities and better on the real ones (13.0 against 12.0 NC, real set 1), at a third of the
# time; with one sample the real communities gain from 200 (set 1: 10.4 -> 11.2 NC, set 2's
# sample 1: 7.8 -> 8.8, five seeds each) and the simulated ones stay level (benchmarks/dev/
# NOTES.md, "Training length with one sample"). Very large data sets may gain from more (VAMB:
# 300-500).
EPOCHS = 100
ONE_SAMPLE_EPOCHS = 200
# Epochs of `bin-reads` unless given: a read set has many more rows than an assembly has
# contigs, so each epoch takes many more steps (the article preset keeps its own 50).
READ_EPOCHS = 20
# The batch size doubles at these fractions of the epochs (8, 25, 50, 75 of 100).
DOUBLING_FRACTIONS = (0.08, 0.25, 0.5, 0.75)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the training stage; field defaults are the `default` preset."""

    preset: str = "default"
    # None: EPOCHS, or ONE_SAMPLE_EPOCHS for data of one sample (see `resolved`).
    epochs: int | None = None
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    # None keeps torch's choice; a fixed number makes CPU results reproducible.
    threads: int | None = None
    # The batch size doubles at the start of these epochs (0-based): large steps early, then
    # smaller gradient noise to settle, as VAMB does. None: at DOUBLING_FRACTIONS of the epochs.
    batch_doubling_epochs: tuple[int, ...] | None = None
    quiet: bool = False

    @classmethod
    def for_preset(cls, preset: str, **overrides: object) -> TrainConfig:
        """Training settings of `preset`, with `overrides` applied."""
        if preset == "article":
            base = cls(preset="article", epochs=50, batch_size=1024, batch_doubling_epochs=())
        elif preset == "default":
            base = cls()
        else:
            raise ParameterError(
                f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}"
            )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def resolved(self, n_samples: int) -> TrainConfig:
        """These settings with the epochs and batch doublings left to the data filled in."""
        epochs = self.epochs
        if epochs is None:
            epochs = ONE_SAMPLE_EPOCHS if n_samples == 1 else EPOCHS
        doubling = self.batch_doubling_epochs
        if doubling is None:
            doubling = tuple(round(epochs * fraction) for fraction in DOUBLING_FRACTIONS)
        return replace(self, epochs=epochs, batch_doubling_epochs=doubling)

    def to_dict(self) -> dict[str, object]:
        """Plain-python form, for checkpoints and summaries."""
        data = asdict(self)
        if self.batch_doubling_epochs is not None:
            data["batch_doubling_epochs"] = list(self.batch_doubling_epochs)
        return data
