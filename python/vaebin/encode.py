"""Turn composition, depth and length arrays into the normalised input of the VAE.

The normalisation follows the choices that made VAMB work well on real data:

* abundance: each sample is scaled to the same total depth (so a deeply sequenced sample does
  not dominate), then each contig's depths are turned into relative abundances across samples
  (rows sum to 1). The total abundance of the contig is kept as one extra feature, log-scaled
  and standardised, so that one sample still carries coverage information.
* composition: k-mer frequencies are standardised per column (centred, unit variance), which
  puts rare and common k-mers on the same footing for a squared-error loss.
* length: longer contigs have less noisy features, so they weigh more in the loss
  (log length, floored, normalised to mean 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vaebin.errors import InputDataError

# Scale every sample to this total depth before turning depths into relative abundances.
_SAMPLE_DEPTH_TOTAL = 1_000_000.0
# Floor on the total abundance before the logarithm, so all-zero contigs stay finite.
_TOTAL_ABUNDANCE_FLOOR = 1e-3
# Length weight is log(length) - offset, floored; contigs of a few kbp then weigh about the same.
_LENGTH_WEIGHT_OFFSET = 5.0
_LENGTH_WEIGHT_FLOOR = 2.0


@dataclass(frozen=True)
class EncodeConfig:
    """Settings of the feature normalisation stage."""

    min_contig_len: int = 2000


@dataclass(frozen=True)
class NormalisationStats:
    """Statistics learned on training data, reused to encode new data the same way."""

    n_samples: int
    composition_mean: np.ndarray
    composition_std: np.ndarray
    log_total_abundance_mean: float
    log_total_abundance_std: float

    def to_dict(self) -> dict[str, object]:
        """Plain-python form, for checkpoints."""
        return {
            "n_samples": int(self.n_samples),
            "composition_mean": self.composition_mean.astype(np.float64).tolist(),
            "composition_std": self.composition_std.astype(np.float64).tolist(),
            "log_total_abundance_mean": float(self.log_total_abundance_mean),
            "log_total_abundance_std": float(self.log_total_abundance_std),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> NormalisationStats:
        """Inverse of `to_dict`."""
        return cls(
            n_samples=int(data["n_samples"]),  # type: ignore[arg-type]
            composition_mean=np.asarray(data["composition_mean"], dtype=np.float32),
            composition_std=np.asarray(data["composition_std"], dtype=np.float32),
            log_total_abundance_mean=float(data["log_total_abundance_mean"]),  # type: ignore[arg-type]
            log_total_abundance_std=float(data["log_total_abundance_std"]),  # type: ignore[arg-type]
        )

    def matches(self, other: NormalisationStats) -> bool:
        """True when both would normalise data identically."""
        return (
            self.n_samples == other.n_samples
            and self.composition_mean.shape == other.composition_mean.shape
            and np.allclose(self.composition_mean, other.composition_mean)
            and np.allclose(self.composition_std, other.composition_std)
            and np.isclose(self.log_total_abundance_mean, other.log_total_abundance_mean)
            and np.isclose(self.log_total_abundance_std, other.log_total_abundance_std)
        )


@dataclass(frozen=True)
class ModelInput:
    """Normalised per-contig features of the contigs kept, ready for the VAE.

    `kept` has one entry per input contig; the other arrays have one row per kept contig.
    """

    names: np.ndarray
    contig_lengths: np.ndarray
    abundance: np.ndarray
    total_abundance: np.ndarray
    composition: np.ndarray
    weights: np.ndarray
    kept: np.ndarray
    n_short: int
    stats: NormalisationStats = field(repr=False)

    @property
    def n_contigs(self) -> int:
        """Number of contigs kept."""
        return int(self.abundance.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of abundance columns."""
        return int(self.abundance.shape[1])

    @property
    def n_composition(self) -> int:
        """Number of composition columns."""
        return int(self.composition.shape[1])

    def feature_matrix(self) -> np.ndarray:
        """Features side by side: abundance, composition, total abundance (float32)."""
        return np.concatenate(
            [self.abundance, self.composition, self.total_abundance[:, None]], axis=1
        ).astype(np.float32, copy=False)


def _as_depth_matrix(depths: np.ndarray, n_contigs: int) -> np.ndarray:
    depth_matrix = np.asarray(depths, dtype=np.float64)
    if depth_matrix.ndim == 1:
        depth_matrix = depth_matrix[:, None]
    if depth_matrix.ndim != 2 or depth_matrix.shape[0] != n_contigs:
        raise ValueError(
            f"depths must have one row per contig ({n_contigs}), got shape {depth_matrix.shape}"
        )
    if depth_matrix.shape[1] < 1:
        raise ValueError("depths must have at least one sample column")
    if not np.all(np.isfinite(depth_matrix)) or np.any(depth_matrix < 0):
        raise ValueError("depths must be finite and non-negative")
    return depth_matrix


def _relative_abundance(depth_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative abundance across samples (rows sum to 1) and total abundance per contig."""
    sample_totals = depth_matrix.sum(axis=0)
    # A sample with no reads on any kept contig is left at zero rather than divided by zero.
    sample_scale = np.where(
        sample_totals > 0, _SAMPLE_DEPTH_TOTAL / np.maximum(sample_totals, 1e-300), 1.0
    )
    scaled = depth_matrix * sample_scale
    total = scaled.sum(axis=1)
    n_samples = depth_matrix.shape[1]
    # Contigs without any coverage get the uninformative uniform profile.
    relative = np.where(
        total[:, None] > 0, scaled / np.where(total > 0, total, 1.0)[:, None], 1.0 / n_samples
    )
    return relative, total


def _frequency_rows(composition: np.ndarray) -> np.ndarray:
    """Rows renormalised to sum to 1 for frequency input; zero rows replaced by the mean row."""
    if np.any(composition < 0):
        # A projection such as VAMB's 103-dimensional one: already centred, take as is.
        return composition
    row_sums = composition.sum(axis=1)
    nonzero = row_sums > 0
    frequencies = composition / np.where(nonzero, row_sums, 1.0)[:, None]
    if not np.all(nonzero):
        # Contigs without any valid k-mer (all N) get the average composition: uninformative.
        mean_row = frequencies[nonzero].mean(axis=0) if np.any(nonzero) else frequencies[0]
        frequencies[~nonzero] = mean_row
    return frequencies


def _safe_std(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    std = np.asarray(values.std(axis=axis))
    return np.where(std > 0, std, 1.0)


def length_weights(contig_lengths: np.ndarray) -> np.ndarray:
    """Loss weight per contig from its length, normalised to mean 1 (float32)."""
    raw = np.maximum(
        np.log(np.maximum(contig_lengths, 1).astype(np.float64)) - _LENGTH_WEIGHT_OFFSET,
        _LENGTH_WEIGHT_FLOOR,
    )
    return (raw / raw.mean()).astype(np.float32)


def build_model_input(
    composition: np.ndarray,
    depths: np.ndarray,
    lengths: np.ndarray,
    names: Sequence[str] | np.ndarray,
    config: EncodeConfig | None = None,
    stats: NormalisationStats | None = None,
) -> ModelInput:
    """Normalise features of contigs at least `min_contig_len` long into a `ModelInput`.

    `composition` is contigs x k-mer frequencies (or a centred projection such as VAMB's 103
    dimensions), `depths` contigs x samples mean depth (1-D for one sample). Pass `stats` from a
    saved model to encode new data exactly as the training data was encoded.
    """
    config = config or EncodeConfig()
    composition_matrix = np.asarray(composition, dtype=np.float64)
    contig_lengths = np.asarray(lengths)
    contig_names = np.asarray(names, dtype=object)
    if contig_lengths.ndim != 1 or not np.issubdtype(contig_lengths.dtype, np.integer):
        raise ValueError("lengths must be a 1-D integer array, one entry per contig")
    n_contigs = int(contig_lengths.shape[0])
    if composition_matrix.ndim != 2 or composition_matrix.shape[0] != n_contigs:
        raise ValueError(
            f"composition must have one row per contig ({n_contigs}), "
            f"got shape {composition_matrix.shape}"
        )
    if composition_matrix.shape[1] < 1 or not np.all(np.isfinite(composition_matrix)):
        raise ValueError("composition must have at least one column and finite values")
    if contig_names.shape != (n_contigs,):
        raise ValueError(f"names must have one entry per contig ({n_contigs})")
    depth_matrix = _as_depth_matrix(depths, n_contigs)

    kept = contig_lengths >= config.min_contig_len
    n_kept = int(kept.sum())
    if n_kept == 0:
        raise InputDataError(
            f"no contig is at least {config.min_contig_len} bp long "
            f"({n_contigs} contigs given); lower the minimum contig length"
        )
    if stats is not None:
        if stats.n_samples != depth_matrix.shape[1]:
            raise InputDataError(
                f"the model was trained on {stats.n_samples} samples, "
                f"but the depths have {depth_matrix.shape[1]}"
            )
        if stats.composition_mean.shape[0] != composition_matrix.shape[1]:
            raise InputDataError(
                f"the model was trained on {stats.composition_mean.shape[0]} composition "
                f"columns, but the composition has {composition_matrix.shape[1]}"
            )

    relative, total = _relative_abundance(depth_matrix[kept])
    log_total = np.log(np.maximum(total, _TOTAL_ABUNDANCE_FLOOR))
    frequencies = _frequency_rows(composition_matrix[kept])
    if stats is None:
        stats = NormalisationStats(
            n_samples=depth_matrix.shape[1],
            composition_mean=frequencies.mean(axis=0).astype(np.float32),
            composition_std=_safe_std(frequencies, axis=0).astype(np.float32),
            log_total_abundance_mean=float(log_total.mean()),
            log_total_abundance_std=float(_safe_std(log_total)),
        )
    standardised_composition = (frequencies - stats.composition_mean) / stats.composition_std
    standardised_total = (
        log_total - stats.log_total_abundance_mean
    ) / stats.log_total_abundance_std

    kept_lengths = contig_lengths[kept].astype(np.int64)
    return ModelInput(
        names=contig_names[kept],
        contig_lengths=kept_lengths,
        abundance=relative.astype(np.float32),
        total_abundance=standardised_total.astype(np.float32),
        composition=standardised_composition.astype(np.float32),
        weights=length_weights(kept_lengths),
        kept=kept,
        n_short=int(n_contigs - n_kept),
        stats=stats,
    )
