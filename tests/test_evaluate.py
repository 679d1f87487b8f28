"""Bin evaluation against hand-computed completeness, purity, counts and bp-weighted ARI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from vaebin.errors import InputDataError
from vaebin.evaluate import adjusted_rand_index, evaluate_bins

TRUTH = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B"}
LENGTHS = {"a1": 100, "a2": 300, "a3": 600, "b1": 400, "b2": 600}


def test_hand_computed_case() -> None:
    bins = {"a2": "X", "a3": "X", "b1": "X", "b2": "Y", "a1": "Y"}
    result = evaluate_bins(TRUTH, LENGTHS, bins)
    by_genome = {score.genome: score for score in result.genomes}
    # A: 900 of its 1000 bp in X (1300 bp); B: 600 of 1000 bp in Y (700 bp).
    assert by_genome["A"].best_bin == "X"
    assert by_genome["A"].completeness == pytest.approx(0.9)
    assert by_genome["A"].purity == pytest.approx(900 / 1300)
    assert by_genome["B"].best_bin == "Y"
    assert by_genome["B"].completeness == pytest.approx(0.6)
    assert by_genome["B"].purity == pytest.approx(600 / 700)
    assert result.near_complete == 0
    assert result.counts["0.5/0.9"] == 0
    assert result.count(0.5, 0.8) == 1
    assert (result.binned_bp, result.total_bp, result.n_bins) == (2000, 2000, 2)

    # Pairs of bp, n(n-1)/2: cells 900, 100, 400, 600; rows 1000, 1000; columns 1300, 700.
    def pairs(n: int) -> float:
        return n * (n - 1) / 2

    index = pairs(900) + pairs(100) + pairs(400) + pairs(600)
    rows = 2 * pairs(1000)
    columns = pairs(1300) + pairs(700)
    expected = rows * columns / pairs(2000)
    ari = (index - expected) / ((rows + columns) / 2 - expected)
    assert result.adjusted_rand_index == pytest.approx(ari)


def test_ari_matches_an_independent_per_bp_computation() -> None:
    rng = np.random.default_rng(0)
    contingency = rng.integers(0, 60, size=(4, 5))
    truth = np.repeat(np.repeat(np.arange(4), 5), contingency.ravel())
    predicted = np.repeat(np.tile(np.arange(5), 4), contingency.ravel())
    assert adjusted_rand_index(contingency) == pytest.approx(adjusted_rand_score(truth, predicted))


def test_perfect_bins() -> None:
    bins = {"a1": "1", "a2": "1", "a3": "1", "b1": "2", "b2": "2"}
    result = evaluate_bins(TRUTH, LENGTHS, bins)
    assert all(s.completeness == 1.0 and s.purity == 1.0 for s in result.genomes)
    assert result.near_complete == 2
    assert result.adjusted_rand_index == pytest.approx(1.0)


def test_thresholds_are_strict() -> None:
    # A is exactly 90% complete and 100% pure: not above 90%.
    bins = {"a2": "1", "a3": "1", "b1": "2", "b2": "2"}
    result = evaluate_bins(TRUTH, LENGTHS, bins)
    by_genome = {score.genome: score for score in result.genomes}
    assert by_genome["A"].completeness == pytest.approx(0.9)
    assert result.near_complete == 1
    assert result.counts["0.7/0.95"] == 2


def test_unbinned_genome_and_contigs_outside_the_truth() -> None:
    bins = {"a1": "1", "a2": "1", "a3": "1", "plasmid": "1"}
    result = evaluate_bins(TRUTH, LENGTHS, bins)
    by_genome = {score.genome: score for score in result.genomes}
    assert by_genome["B"].best_bin is None
    assert by_genome["B"].completeness == 0.0
    assert by_genome["A"].purity == 1.0
    assert result.contigs_not_in_truth == 1
    assert result.binned_bp == 1000
    assert evaluate_bins(TRUTH, LENGTHS, {}).near_complete == 0


def test_json_and_table() -> None:
    result = evaluate_bins(TRUTH, LENGTHS, {"a1": "1", "b1": "2"})
    data = json.loads(result.to_json())
    assert data["genomes"][0]["genome"] == "A"
    assert "adjusted_rand_index" in data
    table = result.table()
    assert "near-complete" in table
    assert "A" in table and "B" in table


def test_missing_length_is_a_clear_error() -> None:
    with pytest.raises(InputDataError, match="'b2' of the truth has no length"):
        evaluate_bins(TRUTH, {k: v for k, v in LENGTHS.items() if k != "b2"}, {})
