"""Composition features against a slow, independent pure-Python k-mer counter."""

from __future__ import annotations

import gzip
import itertools
import subprocess
from pathlib import Path

import numpy as np
import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaebin import features
from vaebin.errors import FormatError, InputDataError, InputFileError, ParameterError

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def reference_labels(k: int) -> list[str]:
    """Canonical k-mers, sorted, built from itertools rather than the 2-bit codes the core uses."""
    kmers = ("".join(p) for p in itertools.product("ACGT", repeat=k))
    return sorted({min(km, km[::-1].translate(COMPLEMENT)) for km in kmers})


def reference_counts(sequence: str, k: int) -> np.ndarray:
    """Count canonical k-mers one window at a time, skipping windows with a non-ACGT letter."""
    labels = reference_labels(k)
    column = {label: i for i, label in enumerate(labels)}
    counts = np.zeros(len(labels), dtype=np.int64)
    upper = sequence.upper()
    for start in range(len(upper) - k + 1):
        window = upper[start : start + k]
        if set(window) <= set("ACGT"):
            counts[column[min(window, window[::-1].translate(COMPLEMENT))]] += 1
    return counts


def write_fasta(
    path: Path, records: list[tuple[str, str]], width: int = 60, eol: str = "\n"
) -> Path:
    with open(path, "w", newline="") as handle:
        for name, sequence in records:
            handle.write(f">{name} some description{eol}")
            for start in range(0, len(sequence), width):
                handle.write(sequence[start : start + width] + eol)
    return path


sequence_text = st.text(alphabet="ACGTacgtNnRYKM", min_size=1, max_size=300)


@pytest.mark.parametrize("k", range(1, 7))
def test_labels_match_reference_order_and_size(k: int) -> None:
    assert features.kmer_labels(k) == reference_labels(k)


def test_label_counts() -> None:
    assert len(features.kmer_labels(4)) == 136
    assert len(features.kmer_labels(3)) == 32
    assert len(features.kmer_labels(6)) == 2080


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sequences=st.lists(sequence_text, min_size=1, max_size=6),
    k=st.integers(min_value=1, max_value=6),
    width=st.integers(min_value=1, max_value=80),
    crlf=st.booleans(),
)
def test_counts_equal_reference(
    tmp_path: Path, sequences: list[str], k: int, width: int, crlf: bool
) -> None:
    records = [(f"r{i}", seq) for i, seq in enumerate(sequences)]
    path = write_fasta(tmp_path / "in.fa", records, width=width, eol="\r\n" if crlf else "\n")
    result = features.composition(path, k=k, normalize=False, threads=2)
    expected = np.array([reference_counts(seq, k) for seq in sequences])
    assert result.matrix.dtype == np.uint32
    np.testing.assert_array_equal(result.matrix, expected)
    np.testing.assert_array_equal(result.kmer_totals, expected.sum(axis=1))
    np.testing.assert_array_equal(result.lengths, [len(s) for s in sequences])
    assert result.names.tolist() == [name for name, _ in records]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequences=st.lists(sequence_text, min_size=1, max_size=5), k=st.integers(1, 6))
def test_frequencies_are_normalised_counts(tmp_path: Path, sequences: list[str], k: int) -> None:
    path = write_fasta(tmp_path / "in.fa", [(f"s{i}", s) for i, s in enumerate(sequences)])
    result = features.composition(path, k=k)
    assert result.matrix.dtype == np.float32
    for row, sequence, total in zip(result.matrix, sequences, result.kmer_totals, strict=True):
        counts = reference_counts(sequence, k)
        assert total == counts.sum()
        if total == 0:
            assert not row.any()
        else:
            np.testing.assert_allclose(row, counts / counts.sum(), rtol=1e-6)
            assert abs(float(row.sum()) - 1.0) < 1e-5


def many_records(count: int, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 3000, size=count)
    return [
        (
            f"contig_{i}",
            "".join(rng.choice(list("ACGTN"), size=n, p=[0.24, 0.26, 0.26, 0.23, 0.01])),
        )
        for i, n in enumerate(lengths)
    ]


def test_many_records_keep_file_order_across_threads_and_batches(tmp_path: Path) -> None:
    records = many_records(400, seed=7)
    # One long record pushes the batcher over its size target in the middle of the file.
    records.insert(200, ("long_one", "ACGT" * 1_200_000))
    path = write_fasta(tmp_path / "many.fa", records, width=70)
    one = features.composition(path, k=3, normalize=False, threads=1)
    two = features.composition(path, k=3, normalize=False, threads=2)
    np.testing.assert_array_equal(one.matrix, two.matrix)
    assert one.names.tolist() == [name for name, _ in records]
    for index in (0, 57, 199, 201, 400):
        np.testing.assert_array_equal(one.matrix[index], reference_counts(records[index][1], 3))
    # "ACGT" repeated n times holds ACG/CGT n times each and GTA/TAC n-1 times each.
    labels = features.kmer_labels(3)
    expected = np.zeros(32, dtype=np.int64)
    expected[labels.index("ACG")] = 2 * 1_200_000
    expected[labels.index("GTA")] = 2 * 1_200_000 - 2
    np.testing.assert_array_equal(one.matrix[200], expected)


def test_min_length_skips_short_records(tmp_path: Path) -> None:
    records = [("a", "ACGT" * 10), ("b", "ACG"), ("c", "A" * 100)]
    path = write_fasta(tmp_path / "in.fa", records)
    result = features.composition(path, min_length=40)
    assert result.names.tolist() == ["a", "c"]
    assert (result.records, result.records_kept, result.records_too_short) == (3, 2, 1)
    assert (result.bases, result.bases_kept) == (143, 140)


def test_compressed_inputs_match_plain(tmp_path: Path) -> None:
    records = many_records(50, seed=3)
    plain = write_fasta(tmp_path / "in.fa", records)
    gz = tmp_path / "renamed.txt"  # detected by content, not by name
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    bgz = tmp_path / "in.fa.bgz"
    pysam.tabix_compress(str(plain), str(bgz), force=True)
    assert bgz.read_bytes()[:4] == b"\x1f\x8b\x08\x04"  # bgzip's extra-field header
    expected = features.composition(plain, normalize=False)
    assert not expected.compressed
    for path in (gz, bgz):
        result = features.composition(path, normalize=False)
        assert result.compressed
        np.testing.assert_array_equal(result.matrix, expected.matrix)
        assert result.names.tolist() == expected.names.tolist()


def test_fastq_input(tmp_path: Path) -> None:
    path = tmp_path / "reads.fq"
    path.write_text("@read1 extra\nACGTACGTNA\n+\nIIIIIIIIII\n@read2\nacgg\n+read2\n####\n")
    result = features.composition(path, k=2, normalize=False)
    assert result.names.tolist() == ["read1", "read2"]
    np.testing.assert_array_equal(result.matrix[0], reference_counts("ACGTACGTNA", 2))
    np.testing.assert_array_equal(result.matrix[1], reference_counts("acgg", 2))


def test_edge_cases_only_n_short_lowercase(tmp_path: Path) -> None:
    records = [("only_n", "N" * 50), ("short", "AC"), ("lower", "acgtacgtaa"), ("gap", "--")]
    result = features.composition(write_fasta(tmp_path / "e.fa", records), k=4)
    assert result.kmer_totals.tolist() == [0, 0, 7, 0]
    assert result.no_kmer_rows.tolist() == [True, True, False, True]
    assert not result.matrix[[0, 1, 3]].any()
    np.testing.assert_allclose(result.matrix[2], reference_counts("ACGTACGTAA", 4) / 7, rtol=1e-6)


def test_a_record_without_sequence_is_refused(tmp_path: Path) -> None:
    # No aligner or BAM can hold a sequence of length 0 (SAM's LN is at least 1).
    records = [("a", "ACGT"), ("empty", ""), ("b", "GG")]
    with pytest.raises(FormatError, match=r"e\.fa: record 2: record has no sequence"):
        features.composition(write_fasta(tmp_path / "e.fa", records), k=4)


def test_blank_lines_before_first_record_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "blank.fa"
    path.write_text("\n\n>x\nACGT\n\n")
    assert features.composition(path, k=1, normalize=False).matrix.tolist() == [[2, 2]]


def test_vamb_projection_is_orthonormal_and_drops_only_redundancy() -> None:
    kernel = features.tetranucleotide_projection_kernel()
    assert kernel.shape == (136, 103)
    rng = np.random.default_rng(0)
    # Frequencies of real sequences project without losing their pairwise distances much,
    # and two sequences with equal frequencies project to the same point.
    counts = np.array(
        [reference_counts("".join(rng.choice(list("ACGT"), 5000)), 4) for _ in range(3)]
    )
    frequencies = (counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)
    projected = features.project_tetranucleotides(frequencies)
    assert projected.shape == (3, 103)
    assert projected.dtype == np.float32
    uniform = np.array([features._uniform_canonical()], dtype=np.float32)
    np.testing.assert_allclose(features.project_tetranucleotides(uniform), 0, atol=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ACGT\n>x\nACGT\n", "record 1: not FASTA or FASTQ: expected '>' or '@'"),
        (b">\nACGT\n", "record 1: empty sequence name"),
        (b">a\nACGT\n>b\nAC\n>a\nGG\n", "record 3: duplicate sequence name 'a'"),
        (
            b">a\nACGT\n>b\nAC\x00\x01GT\n",
            "record 2: invalid character byte 0x00 at sequence position 3",
        ),
        (b">a\nAC GT\n", "record 1: invalid character"),
        (
            b"@r1\nACGT\n+\nIII\n",
            "record 1: FASTQ quality line has 3 characters for a sequence of 4",
        ),
        (b"@r1\nACGT\nIIII\n", "record 1: FASTQ record lacks the '+' separator line"),
        (b"@r1\nACGT\n+\nIIII\n@r2\nAC\n", "record 2: FASTQ record ends before its '+' line"),
    ],
)
def test_malformed_input_names_file_and_record(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.fa"
    path.write_bytes(content)
    with pytest.raises(FormatError) as raised:
        features.composition(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_truncated_gzip_is_an_error(tmp_path: Path) -> None:
    records = many_records(200, seed=1)
    data = gzip.compress(write_fasta(tmp_path / "x.fa", records).read_bytes())
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut\.fa\.gz: record \d+: .*truncated gzip"):
        features.composition(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"nope\.fa: no such file"):
        features.composition(tmp_path / "nope.fa")
    empty = tmp_path / "empty.fa"
    empty.write_bytes(b"")
    with pytest.raises(InputDataError, match=r"empty\.fa: contains no sequences"):
        features.composition(empty)
    empty_gz = tmp_path / "empty.fa.gz"
    empty_gz.write_bytes(gzip.compress(b""))
    with pytest.raises(InputDataError, match="contains no sequences"):
        features.composition(empty_gz)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be between 1 and 6"),
        ({"k": 7}, "k must be between 1 and 6"),
        ({"threads": 0}, "threads must be at least 1"),
    ],
)
def test_parameter_errors(tmp_path: Path, kwargs: dict[str, int], message: str) -> None:
    path = write_fasta(tmp_path / "a.fa", [("a", "ACGT")])
    with pytest.raises(ParameterError, match=message):
        features.composition(path, **kwargs)


def test_gzip_tool_output_matches(tmp_path: Path) -> None:
    plain = write_fasta(tmp_path / "p.fa", many_records(30, seed=9))
    subprocess.run(["gzip", "-k", str(plain)], check=True)
    a = features.composition(plain, k=5, normalize=False)
    b = features.composition(tmp_path / "p.fa.gz", k=5, normalize=False)
    np.testing.assert_array_equal(a.matrix, b.matrix)
