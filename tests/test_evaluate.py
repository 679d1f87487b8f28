"""Bin evaluation against hand-computed completeness, purity, counts and bp-weighted ARI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from vaebin.errors import FormatError, InputDataError, InputFileError, ParameterError
from vaebin.evaluate import (
    adjusted_rand_index,
    evaluate_bins,
    evaluate_files,
    per_sample_truth,
)
from vaebin.io.cami import read_cami, write_cami_binning
from vaebin.io.clusters import write_clusters

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


# --- evaluate_files: the `evaluate` command's library function ---------------------------------


def _write_truth(path: Path, with_lengths: bool = True) -> Path:
    names = list(TRUTH)
    return write_cami_binning(
        path,
        names,
        [TRUTH[name] for name in names],
        [LENGTHS[name] for name in names] if with_lengths else None,
        sample_id="hand",
    )


def test_files_in_both_bin_formats_give_the_hand_computed_scores(tmp_path: Path) -> None:
    bins = {"a2": "X", "a3": "X", "b1": "X", "b2": "Y", "a1": "Y"}
    truth = _write_truth(tmp_path / "truth.binning")
    clusters = tmp_path / "clusters.tsv"
    write_clusters(clusters, list(bins.values()), list(bins))
    cami = write_cami_binning(tmp_path / "bins.binning", list(bins), list(bins.values()))
    expected = evaluate_bins(TRUTH, LENGTHS, bins)
    for bins_file in (clusters, cami):
        result = evaluate_files(truth, bins_file)
        assert result.to_json() == expected.to_json()
        assert result.genomes[0].completeness == pytest.approx(0.9)


def test_files_take_lengths_from_the_sequences_without_a_length_column(tmp_path: Path) -> None:
    truth = _write_truth(tmp_path / "truth.binning", with_lengths=False)
    assert read_cami(truth).lengths is None
    clusters = tmp_path / "clusters.tsv"
    write_clusters(clusters, ["X", "X"], ["a1", "a2"])
    with pytest.raises(InputDataError, match=r"truth.binning: no _LENGTH column; pass the"):
        evaluate_files(truth, clusters)
    fasta = tmp_path / "contigs.fna"
    fasta.write_text("".join(f">{name}\n{'A' * size}\n" for name, size in LENGTHS.items()))
    result = evaluate_files(truth, clusters, fasta)
    assert result.to_json() == evaluate_bins(TRUTH, LENGTHS, {"a1": "X", "a2": "X"}).to_json()


def test_cami_reader_names_a_bad_length_and_a_missing_bins_file(tmp_path: Path) -> None:
    truth = tmp_path / "truth.binning"
    truth.write_text("@Version:0.9.1\n\n@@SEQUENCEID\tBINID\t_LENGTH\nc1\tg1\t100\nc2\tg1\tlong\n")
    with pytest.raises(FormatError, match=r"truth.binning: line 5: _LENGTH 'long' is not a whole"):
        read_cami(truth)
    good = _write_truth(tmp_path / "good.binning")
    with pytest.raises(InputFileError, match=r"absent.tsv"):
        evaluate_files(good, tmp_path / "absent.tsv")


# Multi-split: genome A has contigs in both samples' assemblies, B too; bins are per sample.
MULTISPLIT_TRUTH = {"S1C1": "A", "S1C2": "A", "S2C1": "A", "S2C2": "B", "S1C3": "B"}
MULTISPLIT_LENGTHS = {"S1C1": 100, "S1C2": 300, "S2C1": 500, "S2C2": 400, "S1C3": 200}
MULTISPLIT_BINS = {
    "S1C1": "S1.bin.1",
    "S1C2": "S1.bin.1",
    "S1C3": "S1.bin.1",
    "S2C1": "S2.bin.1",
    "S2C2": "S2.bin.2",
}


def test_multisplit_bins_against_whole_genomes_are_never_complete() -> None:
    result = evaluate_bins(MULTISPLIT_TRUTH, MULTISPLIT_LENGTHS, MULTISPLIT_BINS)
    by_genome = {score.genome: score for score in result.genomes}
    # A: 900 bp, at most 500 in one per-sample bin; B: 600 bp, at most 400.
    assert (by_genome["A"].best_bin, by_genome["A"].completeness) == ("S2.bin.1", 500 / 900)
    assert (by_genome["B"].best_bin, by_genome["B"].completeness) == ("S2.bin.2", 400 / 600)
    assert result.near_complete == 0


def test_split_separator_scores_per_sample_genomes() -> None:
    result = evaluate_bins(
        MULTISPLIT_TRUTH, MULTISPLIT_LENGTHS, MULTISPLIT_BINS, split_separator="C"
    )
    scores = [(s.genome, s.genome_bp, s.best_bin, s.completeness, s.purity) for s in result.genomes]
    # S1.bin.1 holds S1's 400 bp of A and 200 bp of B (600 bp).
    assert scores == [
        ("S1:A", 400, "S1.bin.1", 1.0, 400 / 600),
        ("S1:B", 200, "S1.bin.1", 1.0, 200 / 600),
        ("S2:A", 500, "S2.bin.1", 1.0, 1.0),
        ("S2:B", 400, "S2.bin.2", 1.0, 1.0),
    ]
    assert result.near_complete == 2
    assert result.counts["0.9/0.9"] == 2
    assert result.count(0.9, 0.6) == 3
    assert (result.binned_bp, result.total_bp, result.n_bins) == (1500, 1500, 3)
    # Contingency rows S1:A, S1:B, S2:A, S2:B over bins S1.bin.1, S2.bin.1, S2.bin.2.
    contingency = np.array([[400, 0, 0], [200, 0, 0], [0, 500, 0], [0, 0, 400]])
    assert result.adjusted_rand_index == pytest.approx(adjusted_rand_index(contingency))
    assert per_sample_truth({"S10C7": "g"}, "C") == {"S10C7": "S10:g"}


@pytest.mark.parametrize(
    ("truth", "separator", "error", "message"),
    [
        (
            {"S1C1": "A", "contig7": "A"},
            "C",
            InputDataError,
            "'contig7' of the truth has no sample",
        ),
        ({"C1": "A"}, "C", InputDataError, "'C1' of the truth has no sample prefix"),
        ({"S1C1": "A"}, "", ParameterError, "the split separator must not be empty"),
    ],
)
def test_split_separator_errors(
    truth: dict[str, str], separator: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        evaluate_bins(truth, {"S1C1": 1, "contig7": 1, "C1": 1}, {}, split_separator=separator)
