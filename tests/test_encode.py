"""Feature normalisation: shapes, hand-checked values, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from vaebin.encode import EncodeConfig, build_model_input, length_weights
from vaebin.errors import InputDataError


def _composition(n_contigs: int, n_columns: int = 136, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 50, size=(n_contigs, n_columns)).astype(np.float32)
    return counts / counts.sum(axis=1, keepdims=True)


def test_shapes_mask_and_short_contigs_left_out() -> None:
    lengths = np.array([5000, 1500, 2000, 9000, 100])
    names = [f"c{i}" for i in range(5)]
    depths = np.arange(15, dtype=np.float32).reshape(5, 3) + 1
    model_input = build_model_input(_composition(5), depths, lengths, names, EncodeConfig())
    assert model_input.kept.tolist() == [True, False, True, True, False]
    assert model_input.n_short == 2
    assert model_input.names.tolist() == ["c0", "c2", "c3"]
    assert model_input.contig_lengths.tolist() == [5000, 2000, 9000]
    assert model_input.abundance.shape == (3, 3)
    assert model_input.composition.shape == (3, 136)
    assert model_input.total_abundance.shape == (3,)
    assert model_input.feature_matrix().shape == (3, 3 + 136 + 1)
    for array in (model_input.abundance, model_input.composition, model_input.weights):
        assert array.dtype == np.float32


def test_abundance_normalisation_by_hand() -> None:
    # Sample totals 4 and 8: after scaling each sample to the same total, contig 0 has
    # (1/4, 2/8) -> relative (0.5, 0.5); contig 1 has (3/4, 6/8) -> (0.5, 0.5).
    depths = np.array([[1.0, 2.0], [3.0, 6.0], [0.0, 0.0]])
    lengths = np.array([3000, 3000, 3000])
    model_input = build_model_input(_composition(3), depths, lengths, ["a", "b", "c"])
    np.testing.assert_allclose(model_input.abundance, [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(model_input.abundance.sum(axis=1), 1.0, rtol=1e-6)
    # Totals after scaling to 1e6 per sample: 0.5e6, 1.5e6, 0 (floored at 1e-3) -> z-scored logs.
    logs = np.log([0.5e6, 1.5e6, 1e-3])
    expected = (logs - logs.mean()) / logs.std()
    np.testing.assert_allclose(model_input.total_abundance, expected, rtol=1e-5)


def test_composition_is_standardised_per_column() -> None:
    model_input = build_model_input(
        _composition(50), np.ones((50, 2)), np.full(50, 4000), [str(i) for i in range(50)]
    )
    np.testing.assert_allclose(model_input.composition.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(model_input.composition.std(axis=0), 1.0, rtol=1e-4)


def test_length_weights_are_log_lengths_floored_and_mean_one() -> None:
    lengths = np.array([2000, 100_000, 1_000_000])
    raw = np.maximum(np.log(lengths) - 5.0, 2.0)
    np.testing.assert_allclose(length_weights(lengths), raw / raw.mean(), rtol=1e-6)
    assert length_weights(lengths).mean() == pytest.approx(1.0)


def test_one_sample_as_1d_depths() -> None:
    model_input = build_model_input(
        _composition(4), np.array([1.0, 2.0, 3.0, 4.0]), np.full(4, 3000), list("abcd")
    )
    assert model_input.n_samples == 1
    np.testing.assert_array_equal(model_input.abundance, np.ones((4, 1), dtype=np.float32))
    assert np.all(np.diff(model_input.total_abundance) > 0)


def test_all_zero_depths_and_zero_kmer_rows_stay_finite() -> None:
    composition = _composition(4)
    composition[2] = 0.0
    model_input = build_model_input(composition, np.zeros((4, 3)), np.full(4, 3000), list("abcd"))
    matrix = model_input.feature_matrix()
    assert np.all(np.isfinite(matrix))
    np.testing.assert_allclose(model_input.abundance, 1.0 / 3.0, rtol=1e-6)
    np.testing.assert_array_equal(model_input.total_abundance, 0.0)
    # The all-N contig gets the average composition: 0 after centring.
    np.testing.assert_allclose(model_input.composition[2], 0.0, atol=1e-5)


def test_projection_input_with_negative_values_is_accepted() -> None:
    rng = np.random.default_rng(1)
    projected = rng.normal(size=(6, 103)).astype(np.float32)
    model_input = build_model_input(projected, np.ones((6, 2)), np.full(6, 3000), list("abcdef"))
    assert model_input.n_composition == 103
    expected = (projected - projected.mean(axis=0)) / projected.std(axis=0)
    np.testing.assert_allclose(model_input.composition, expected, rtol=1e-4, atol=1e-5)


def test_saved_stats_encode_new_data_like_training_data() -> None:
    composition = _composition(10)
    depths = np.arange(20, dtype=np.float64).reshape(10, 2) + 1
    names = [str(i) for i in range(10)]
    training = build_model_input(composition, depths, np.full(10, 3000), names)
    again = build_model_input(composition, depths, np.full(10, 3000), names, stats=training.stats)
    np.testing.assert_array_equal(training.feature_matrix(), again.feature_matrix())
    with pytest.raises(InputDataError, match="trained on 2 samples"):
        build_model_input(
            composition, depths[:, :1], np.full(10, 3000), names, stats=training.stats
        )


@pytest.mark.parametrize(
    ("lengths", "depths", "error", "message"),
    [
        # The data's fault: a user error.
        (np.array([100, 200]), np.ones((2, 1)), InputDataError, "no contig is at least 2000 bp"),
        # The caller's: arrays that break the function's contract are a bug, a ValueError.
        (np.array([3000, 3000]), np.ones((3, 1)), ValueError, "one row per contig"),
        (np.array([3000, 3000]), -np.ones((2, 1)), ValueError, "non-negative"),
    ],
)
def test_bad_input_is_a_clear_error(
    lengths: np.ndarray, depths: np.ndarray, error: type[Exception], message: str
) -> None:
    assert not issubclass(InputDataError, ValueError)
    with pytest.raises(error, match=message):
        build_model_input(_composition(2), depths, lengths, ["a", "b"])
