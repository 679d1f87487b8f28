"""Settings of the training stage, free of torch so the CLI can show them without loading it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

# Model presets: the tuned default and the article's baseline VAE.
PRESETS = ("default", "article")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of the training stage; field defaults are the `default` preset."""

    preset: str = "default"
    # 100 epochs bin as well as 300 on the simulated communities measured, at a third of the
    # time (benchmarks/dev/NOTES.md); very large data sets may gain from more (VAMB: 300-500).
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    # None keeps torch's choice; a fixed number makes CPU results reproducible.
    threads: int | None = None
    # The batch size doubles at the start of these epochs (0-based): large steps early, then
    # smaller gradient noise to settle, as VAMB does.
    batch_doubling_epochs: tuple[int, ...] = (8, 25, 50, 75)
    quiet: bool = False

    @classmethod
    def for_preset(cls, preset: str, **overrides: object) -> TrainConfig:
        """Training settings of `preset`, with `overrides` applied."""
        if preset == "article":
            base = cls(preset="article", epochs=50, batch_size=1024, batch_doubling_epochs=())
        elif preset == "default":
            base = cls()
        else:
            raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
        return replace(base, **overrides)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        """Plain-python form, for checkpoints and summaries."""
        data = asdict(self)
        data["batch_doubling_epochs"] = list(self.batch_doubling_epochs)
        return data
