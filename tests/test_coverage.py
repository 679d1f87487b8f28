"""Coverage from BAM files: the Rust core against a pure-Python model and against MetaBAT2's
`jgi_summarize_bam_contig_depths` itself (skipped only where that program is not installed),
depth tables, and every error through the command line."""

from __future__ import annotations

import gzip
import os
import random
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pysam
import pytest
from bam_fixtures import (
    METABAT,
    Read,
    random_contigs,
    random_sample,
    reference_depths,
    reference_total_depth,
    run_metabat,
    write_bam,
    write_fasta,
)
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaebin import depths, features
from vaebin.cli import main
from vaebin.errors import FormatError, InputDataError, InputFileError, ParameterError
from vaebin.io import depth_table

CLI = [os.path.join(os.path.dirname(sys.executable), "vaebin-rs")]
needs_metabat = pytest.mark.skipif(METABAT is None, reason="jgi_summarize_bam_contig_depths absent")

CONTIGS = [
    ("long", 2000),
    ("empty", 900),
    ("short", 120),  # shorter than 2 * 75 + 1: no trimming
    ("tiny", 2),  # two bases: MetaBAT reports 0
    ("edge", 400),
]


def fixture_reads() -> list[Read]:
    """Every case the MetaBAT rules distinguish, on the contigs above."""
    return [
        Read("long", 0, "100M"),  # at the contig start (trimmed zone)
        Read("long", 10, "100M", nm=3),  # 97 % identity: kept
        Read("long", 20, "100M", nm=4),  # 96 %: left out
        Read("long", 100, "20S80M", nm=0),  # soft clip: no depth, no identity cost
        Read("long", 150, "40M2I58M", nm=2),  # insertion: 98/100
        Read("long", 160, "40M3D60M", nm=3),  # deletion: not covered, 100/103 identity
        Read("long", 170, "40M5D60M", nm=5),  # 100/105 < 97 %: left out
        Read("long", 200, "50M100N50M", nm=0),  # spliced: the skip is not covered
        Read("long", 300, "100M", flag=0x100),  # secondary: left out
        Read("long", 300, "100M", flag=0x400),  # duplicate: left out
        Read("long", 300, "100M", flag=0x200),  # QC fail: left out
        Read("long", 320, "100M", flag=0x800),  # supplementary: counted
        Read("long", 330, "100M", mapq=0),  # MAPQ 0: counted by default
        Read("long", 340, "100M", nm=None),  # no NM: identity from indels only
        Read("long", 350, "97=3X", nm=3),  # =/X operations
        Read("long", 360, "30H100M", flag=0x810),  # hard clip, reverse supplementary
        Read("long", 1900, "100M"),  # at the contig end
        Read("short", 0, "100M"),
        Read("short", 20, "100M", nm=1),
        Read("tiny", 0, "2M"),
        Read("edge", 300, "100M"),
        Read(None, sequence_length=150),  # unplaced unmapped: counts in the average length
    ]


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("coverage")
    bam = write_bam(folder / "sample1.bam", CONTIGS, fixture_reads())
    fasta = write_fasta(folder / "contigs.fna", CONTIGS)
    return fasta, bam


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The installed console command (a few calls check the real entry point)."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, check=False)


def cli(*args: str | Path) -> tuple[int, str]:
    """The Click command in this process (exit code, stderr): no interpreter start per call."""
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


def parse_table(text: str) -> tuple[list[str], list[list[str]]]:
    lines = text.rstrip("\n").split("\n")
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def assert_tables_agree(ours: str, theirs: str) -> None:
    """Same header, names and lengths; every number within 1e-4 relative (they are usually equal
    to the last printed digit)."""
    our_header, our_rows = parse_table(ours)
    their_header, their_rows = parse_table(theirs)
    assert our_header == their_header
    assert [row[0] for row in our_rows] == [row[0] for row in their_rows]
    ours_numbers = np.array([[float(v) for v in row[1:]] for row in our_rows])
    theirs_numbers = np.array([[float(v) for v in row[1:]] for row in their_rows])
    np.testing.assert_allclose(ours_numbers, theirs_numbers, rtol=1e-4, atol=1e-6)


def check_against_reference(fasta: Path, bams: list[Path], **options: object) -> None:
    result = features.coverage(fasta, bams, threads=2, **options)  # type: ignore[arg-type]
    expected = [reference_depths(bam, **options) for bam in bams]  # type: ignore[arg-type]
    order = [expected[0].names.index(name) for name in result.names]
    means = np.array([[e.means[i] for e in expected] for i in order])
    variances = np.array([[e.variances[i] for e in expected] for i in order])
    # MetaBAT sums in float32 (the model in exact arithmetic); the mean mode sums in float64.
    tolerance = 1e-9 if options.get("mode") == "mean" else 1e-4
    np.testing.assert_allclose(result.depths, means, rtol=tolerance, atol=1e-7)
    np.testing.assert_allclose(result.variances, variances, rtol=tolerance, atol=1e-7)
    assert list(result.edge_trims) == [e.edge_trim for e in expected]
    totals = reference_total_depth(list(result.lengths), result.depths, list(result.edge_trims))
    np.testing.assert_allclose(result.total_average_depth, totals, rtol=1e-4, atol=1e-6)


def test_fixture_matches_python_model(fixture_files: tuple[Path, Path]) -> None:
    fasta, bam = fixture_files
    check_against_reference(fasta, [bam])
    check_against_reference(fasta, [bam], min_mapq=1, min_identity=0.9, trim_edges=20)
    check_against_reference(fasta, [bam], mode="mean")


def test_fixture_counts_reads_by_rule(fixture_files: tuple[Path, Path]) -> None:
    fasta, bam = fixture_files
    counts = features.coverage(fasta, [bam]).read_counts[0]
    assert counts["records"] == len(fixture_reads())
    assert counts["filtered_flags"] == 3
    assert counts["unmapped"] == 1
    assert counts["low_identity"] == 2
    assert counts["counted"] == len(fixture_reads()) - 6
    assert counts["low_mapq"] == 0


def test_rules_by_hand(tmp_path: Path) -> None:
    """Small cases whose numbers are worked out here, independently of both implementations."""
    contigs = [("a", 1000), ("b", 151), ("c", 1000)]
    reads = [
        Read("a", 0, "100M"),
        Read("a", 450, "50M1D50M", nm=1),  # 100 / 101 identity
        Read("a", 900, "100M"),
        Read("b", 0, "100M"),
        Read("c", 500, "100M", nm=4),  # 96 % identity
    ]
    fasta = write_fasta(tmp_path / "c.fa", contigs)
    result = features.coverage(fasta, [write_bam(tmp_path / "s.bam", contigs, reads)])
    # Average read length 100 -> 75 bases trimmed at each end of 'a': window [75, 925) of 850.
    # Covered there: 25 + 100 (the deleted base is not) + 25.
    assert result.depths[0, 0] == pytest.approx(150 / 850, rel=1e-6)
    window = np.zeros(850)
    window[:25] = 1
    window[450 - 75 : 450 - 75 + 50] = 1
    window[501 - 75 : 501 - 75 + 50] = 1
    window[-25:] = 1
    assert result.variances[0, 0] == pytest.approx(window.var(ddof=1), rel=1e-5)  # float32
    # 'b' is 151 bp, not longer than 2 * 75 + 1: the whole contig counts.
    assert result.depths[1, 0] == pytest.approx(100 / 151, rel=1e-6)
    # 'c' only has a read under 97 % identity.
    assert result.depths[2, 0] == 0
    mean = features.coverage(fasta, [tmp_path / "s.bam"], mode="mean")
    assert mean.depths[0, 0] == pytest.approx(300 / 1000)
    assert mean.depths[2, 0] == pytest.approx(100 / 1000)


def test_short_reads_trim_their_length(tmp_path: Path) -> None:
    contigs = [("a", 500)]
    reads = [Read("a", p, "50M") for p in range(0, 451, 50)]
    fasta = write_fasta(tmp_path / "c.fa", contigs)
    result = features.coverage(fasta, [write_bam(tmp_path / "s.bam", contigs, reads)])
    assert list(result.edge_trims) == [50]
    assert result.depths[0, 0] == pytest.approx(1.0)


@needs_metabat
def test_fixture_matches_metabat(fixture_files: tuple[Path, Path], tmp_path: Path) -> None:
    fasta, bam = fixture_files
    out = tmp_path / "depth.tsv"
    result = run("coverage", "--contigs", fasta, "--bam", bam, "--out", out, "-t", "2")
    assert result.returncode == 0, result.stderr
    theirs = run_metabat([bam])
    assert_tables_agree(out.read_text(), theirs)
    assert out.read_text() == theirs  # same %g formatting, digit for digit


@needs_metabat
@pytest.mark.parametrize(
    ("options", "metabat_options"),
    [
        (["--min-mapq", "1"], ["--minMapQual", "1"]),
        (["--min-identity", "0.9"], ["--percentIdentity", "90"]),
        (["--trim-edges", "30"], ["--maxEdgeBases", "30"]),
        (["--trim-edges", "0"], ["--includeEdgeBases"]),
    ],
)
def test_options_match_metabat(
    fixture_files: tuple[Path, Path],
    tmp_path: Path,
    options: list[str],
    metabat_options: list[str],
) -> None:
    fasta, bam = fixture_files
    out = tmp_path / "depth.tsv"
    code, stderr = cli("coverage", "--contigs", fasta, "--bam", bam, "--out", out, "-q", *options)
    assert code == 0, stderr
    assert_tables_agree(out.read_text(), run_metabat([bam], *metabat_options))


@needs_metabat
def test_several_samples_match_metabat(tmp_path: Path) -> None:
    rng = random.Random(5)
    contigs = [*random_contigs(rng), ("big", 1_234_567)]
    bams = []
    for i in range(3):
        reads = random_sample(rng, contigs, 300)
        reads += [Read("big", p, "150M") for p in range(1000, 600_000, 997)]
        bams.append(write_bam(tmp_path / f"s{i}.bam", contigs, reads))
    fasta = write_fasta(tmp_path / "contigs.fa", contigs)
    out = tmp_path / "depth.tsv"
    arguments = ["coverage", "--contigs", fasta, "--out", out, "-q"]
    code, stderr = cli(*arguments, *[x for bam in bams for x in ("--bam", bam)])
    assert code == 0, stderr
    theirs = run_metabat(bams)
    assert out.read_text() == theirs
    assert "1.23457e+06" in theirs


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), samples=st.integers(1, 3))
def test_random_bams_match_model_and_metabat(tmp_path: Path, seed: int, samples: int) -> None:
    rng = random.Random(seed)
    folder = tmp_path / str(seed)
    folder.mkdir(exist_ok=True)
    contigs = random_contigs(rng)
    bams = [
        write_bam(folder / f"s{i}.bam", contigs, random_sample(rng, contigs, rng.randint(0, 300)))
        for i in range(samples)
    ]
    fasta = write_fasta(folder / "contigs.fa", contigs)
    check_against_reference(fasta, bams)
    if METABAT is not None:
        table = depths.table_from_coverage(features.coverage(fasta, bams, threads=1))
        depth_table.write_depth_table(folder / "ours.tsv", table)
        assert (folder / "ours.tsv").read_text() == run_metabat(bams)


def test_threads_and_block_boundaries_do_not_change_results(tmp_path: Path) -> None:
    # Enough records for many BGZF blocks and several batches, so records straddle both.
    rng = random.Random(11)
    contigs = [(f"c{i}", rng.randint(2000, 20000)) for i in range(40)]
    reads = random_sample(rng, contigs, 60000)
    bam = write_bam(tmp_path / "big.bam", contigs, reads)
    fasta = write_fasta(tmp_path / "c.fa", contigs)
    one = features.coverage(fasta, [bam], threads=1)
    for threads in (2, 3, 7):
        other = features.coverage(fasta, [bam], threads=threads)
        np.testing.assert_array_equal(one.depths, other.depths)
        np.testing.assert_array_equal(one.variances, other.variances)
    assert one.read_counts[0]["records"] == len(reads)


def test_output_follows_fasta_order_and_empty_contigs_are_zero(tmp_path: Path) -> None:
    contigs = [("a", 300), ("b", 300), ("c", 300)]
    bam = write_bam(tmp_path / "s.bam", contigs, [Read("b", 100, "100M")])
    fasta = write_fasta(tmp_path / "c.fa", [("c", 300), ("b", 300), ("a", 300)])
    result = features.coverage(fasta, bam)  # one BAM may be given without a list
    assert list(result.names) == ["c", "b", "a"]
    assert result.depths[0, 0] == 0 and result.depths[2, 0] == 0
    assert result.depths[1, 0] == pytest.approx(100 / 150)
    assert result.sample_names == ["s.bam"]


def test_bam_without_reads(tmp_path: Path) -> None:
    contigs = [("a", 300)]
    bam = write_bam(tmp_path / "s.bam", contigs, [])
    result = features.coverage(write_fasta(tmp_path / "c.fa", contigs), [bam])
    assert result.depths.tolist() == [[0.0]] and result.variances.tolist() == [[0.0]]


# Depth tables.


@needs_metabat
def test_metabat_tables_read_write_round_trip(
    fixture_files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, bam = fixture_files
    for options in ([], ["--noIntraDepthVariance"]):
        source = tmp_path / "metabat.tsv"
        source.write_text(run_metabat([bam, bam], *options))
        table = depth_table.read_depth_table(source)
        assert table.sample_names == ["sample1.bam", "sample1.bam"]
        assert (table.variances is None) == bool(options)
        copy = tmp_path / "copy.tsv"
        depth_table.write_depth_table(copy, table)
        assert copy.read_text() == source.read_text()


@needs_metabat
def test_merge_equals_metabat_on_all_samples(tmp_path: Path) -> None:
    rng = random.Random(3)
    contigs = [*random_contigs(rng), ("long", 5000)]
    bams, tables = [], []
    for i in range(3):
        reads = [Read("long", p, "150M", nm=p % 6) for p in range(0, 4850, 37 + i)]
        reads += [r for r in random_sample(rng, contigs, 100) if "150" in r.cigar]
        bams.append(write_bam(tmp_path / f"s{i}.bam", contigs, reads))
        tables.append(tmp_path / f"s{i}.tsv")
        tables[-1].write_text(run_metabat([bams[-1]]))
    out = tmp_path / "merged.tsv"
    code, stderr = cli("merge-depths", *tables, "--out", out, "-q")
    assert code == 0, stderr
    assert out.read_text() == run_metabat(bams)


def test_write_goes_through_links_and_devices(tmp_path: Path) -> None:
    table = depth_table.DepthTable(
        names=np.array(["a"]),
        lengths=np.array([10]),
        total_average_depth=np.array([1.5]),
        depths=np.array([[1.5]]),
        variances=np.array([[0.25]]),
        sample_names=["s.bam"],
    )
    real = tmp_path / "real.tsv"
    real.write_text("old\n")
    link = tmp_path / "link.tsv"
    link.symlink_to(real)
    depth_table.write_depth_table(link, table)  # as for --out /dev/stdout: the link must survive
    assert link.is_symlink()
    assert (
        real.read_text()
        == "contigName\tcontigLen\ttotalAvgDepth\ts.bam\ts.bam-var\na\t10\t1.5\t1.5\t0.25\n"
    )
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(fifo.read_text)
        depth_table.write_depth_table(fifo, table)
        assert reading.result(timeout=10) == real.read_text()
    assert fifo.is_fifo()


def test_lengths_match_six_significant_digits() -> None:
    table_lengths = np.array([1000, 1234570, 1234570, 1234560, 999999, 10_000_000])
    true_lengths = np.array([1000, 1234567, 1234575, 1234565, 999998, 9_999_996])
    expected = [True, True, False, True, False, True]
    assert depth_table.lengths_match(table_lengths, true_lengths).tolist() == expected
    # Lengths written in full (vaebin-rs's coverage of a contig over 1 Mbp) match as well.
    full = np.array([1_118_491, 10_000_001, 1_000_000])
    assert depth_table.lengths_match(full, full).tolist() == [True, True, True]
    assert not depth_table.lengths_match(np.array([1_118_492]), np.array([1_118_491]))[0]


def test_depths_from_bams_line_up_with_a_contig_over_one_mbp() -> None:
    from types import SimpleNamespace

    from vaebin.pipeline import _align_depths

    # A genome assembled in one contig of 1,118,491 bp (real set 4): its length in the depths
    # computed from the BAMs is exact, not rounded to 6 digits as MetaBAT2 prints it.
    names = np.array(["k141_1", "k141_2"])
    lengths = np.array([1_118_491, 5_000])
    table = SimpleNamespace(
        names=["k141_2", "k141_1"],
        lengths=[5_000, 1_118_491],
        depths=np.array([[2.0], [7.0]], dtype=np.float32),
        sample_names=["s1"],
    )
    depth, samples = _align_depths(names, lengths, table, "s1.bam")
    assert depth[:, 0].tolist() == [7.0, 2.0] and samples == ["s1"]


def test_read_rejects_malformed_tables(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    cases = {
        "name\tlength\n": "not a MetaBAT2 depth table",
        "contigName\tcontigLen\ttotalAvgDepth\ts.bam\ts.bam-var\na\t10\t1\t1\n": "line 2",
        "contigName\tcontigLen\ttotalAvgDepth\ts.bam\na\t10\t1\tx\n": "not a number",
        "contigName\tcontigLen\ttotalAvgDepth\ts.bam\na\t10\t1\t1\na\t10\t1\t1\n": "more than one",
        "contigName\tcontigLen\ttotalAvgDepth\n": "no sample column",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(FormatError, match=message):
            depth_table.read_depth_table(path)
    path.write_text("contigName\tcontigLen\ttotalAvgDepth\ts.bam\n")
    with pytest.raises(InputDataError, match="no contig row"):
        depth_table.read_depth_table(path)
    with pytest.raises(InputFileError, match="no such file"):
        depth_table.read_depth_table(tmp_path / "absent.tsv")


def test_merge_rejects_other_contigs(tmp_path: Path) -> None:
    header = "contigName\tcontigLen\ttotalAvgDepth\ts{0}.bam\ts{0}.bam-var\n"
    (tmp_path / "a.tsv").write_text(header.format(1) + "x\t10\t1\t1\t0\ny\t20\t1\t1\t0\n")
    (tmp_path / "b.tsv").write_text(header.format(2) + "x\t10\t1\t1\t0\ny\t21\t1\t1\t0\n")
    (tmp_path / "c.tsv").write_text(header.format(3) + "x\t10\t1\t1\t0\n")
    (tmp_path / "d.tsv").write_text(
        "contigName\tcontigLen\ttotalAvgDepth\ts4.bam\nx\t10\t1\t1\ny\t20\t1\t1\n"
    )
    for other, message in [
        ("b.tsv", "contigs differ from .*a.tsv in 1 rows .*'y' of 21 bp"),
        ("c.tsv", "1 contigs, but .*a.tsv has 2"),
        ("d.tsv", "no '-var' columns"),
    ]:
        out = tmp_path / "m.tsv"
        code, stderr = cli("merge-depths", tmp_path / "a.tsv", tmp_path / other, "--out", out)
        assert code == 1
        assert stderr.startswith("vaebin-rs: error: ")
        assert len(stderr.strip().split("\n")) == 1
        assert re.search(message, stderr), stderr
        assert not out.exists()


# Errors through the command line: one line naming the file, exit code 1, no output file.


def truncate(source: Path, target: Path, size: int) -> Path:
    target.write_bytes(source.read_bytes()[:size])
    return target


def bgzf_block_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    offsets, at = [], 0
    while at < len(data):
        offsets.append(at)
        at += int.from_bytes(data[at + 16 : at + 18], "little") + 1
    return offsets


@pytest.fixture(scope="module")
def multi_block_bam(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("blocks")
    rng = random.Random(2)
    contigs = [(f"c{i}", 5000) for i in range(5)]
    bam = write_bam(folder / "many.bam", contigs, random_sample(rng, contigs, 5000))
    return write_fasta(folder / "c.fa", contigs), bam


def error_cases(tmp: Path, fasta: Path, bam: Path) -> list[tuple[list[str | Path], str]]:
    blocks = bgzf_block_offsets(bam)
    size = bam.stat().st_size
    corrupt = bytearray(bam.read_bytes())
    corrupt[blocks[2] + 40] ^= 0xFF
    (tmp / "corrupt.bam").write_bytes(bytes(corrupt))
    sam = tmp / "reads.sam"
    pysam.view("-h", "-o", str(sam), str(bam), catch_stdout=False)
    (tmp / "fake.cram").write_bytes(b"CRAM\x03\x00" + bytes(40))
    (tmp / "plain.gz").write_bytes(gzip.compress(b"hello"))
    bgzf_sam = tmp / "sam.bam"
    with pysam.BGZFile(str(bgzf_sam), "wb") as handle:
        handle.write(sam.read_bytes())
    (tmp / "empty.bam").write_bytes(b"")
    unsorted = write_bam(
        tmp / "unsorted.bam",
        [(f"c{i}", 5000) for i in range(5)],
        [Read("c0", 500), Read("c0", 100)],
        sort=False,
    )
    other_contigs = write_fasta(
        tmp / "other.fa", [("c0", 5000), ("c1", 4999), ("c2", 5000), ("c9", 10)]
    )
    return [
        ([fasta, tmp / "absent.bam"], "absent.bam: no such file"),
        ([tmp / "absent.fa", bam], "absent.fa: no such file"),
        ([fasta, sam], "reads.sam: is a SAM text file, not BAM"),
        ([fasta, tmp / "fake.cram"], "fake.cram: is a CRAM file, not BAM"),
        ([fasta, tmp / "plain.gz"], "plain.gz: .*gzip, not BGZF"),
        ([fasta, bgzf_sam], "sam.bam: is bgzip-compressed SAM text, not BAM"),
        ([fasta, tmp / "empty.bam"], "empty.bam: is empty"),
        ([fasta, truncate(bam, tmp / "cut.bam", blocks[3] + 100)], "cut.bam: .*truncated"),
        ([fasta, truncate(bam, tmp / "noeof.bam", size - 28)], "noeof.bam: .*end-of-file marker"),
        ([fasta, truncate(bam, tmp / "head.bam", 30)], "head.bam: .*truncated"),
        ([fasta, tmp / "corrupt.bam"], "corrupt.bam: .*corrupt BGZF block"),
        ([fasta, unsorted], "unsorted.bam: not sorted by coordinate .*SO:unsorted"),
        (
            [other_contigs, bam],
            "many.bam: BAM references do not match the contigs of .*other.fa "
            r"\(4 mismatches: 'c1' is 5000 bp in the BAM but 4999 bp.*"
            "reference 'c3' is not a contig.*contig 'c9' is not a BAM reference",
        ),
    ]


def test_errors_through_the_cli(tmp_path: Path, multi_block_bam: tuple[Path, Path]) -> None:
    fasta, bam = multi_block_bam
    out = tmp_path / "depth.tsv"
    for (contigs, bam_path), message in error_cases(tmp_path, fasta, bam):
        code, stderr = cli("coverage", "--contigs", contigs, "--bam", bam_path, "--out", out)
        assert code == 1, (message, stderr)
        lines = stderr.strip().split("\n")
        assert len(lines) == 1, stderr
        assert lines[0].startswith("vaebin-rs: error: "), lines
        assert re.search(message, lines[0]), (message, lines[0])
        assert not out.exists()
        assert not list(tmp_path.glob(".depth.tsv.*"))


def test_console_command_reports_one_line(tmp_path: Path) -> None:
    fasta = write_fasta(tmp_path / "c.fa", [("a", 100)])
    result = run("coverage", "--contigs", fasta, "--bam", tmp_path / "x.bam", "--out", "o.tsv")
    assert result.returncode == 1
    assert result.stderr == f"vaebin-rs: error: {tmp_path / 'x.bam'}: no such file\n"
    assert result.stdout == ""


def test_errors_raise_vaebin_errors(multi_block_bam: tuple[Path, Path], tmp_path: Path) -> None:
    fasta, bam = multi_block_bam
    with pytest.raises(InputFileError):
        features.coverage(fasta, [tmp_path / "absent.bam"])
    with pytest.raises(InputDataError, match="is a directory"):
        features.coverage(fasta, [tmp_path])
    with pytest.raises(ParameterError, match="depth mode"):
        features.coverage(fasta, [bam], mode="median")
    with pytest.raises(ParameterError, match="identity"):
        features.coverage(fasta, [bam], min_identity=1.5)
    with pytest.raises(ParameterError, match="MAPQ"):
        features.coverage(fasta, [bam], min_mapq=256)
    with pytest.raises(ParameterError, match="no BAM"):
        features.coverage(fasta, [])
    truncated = truncate(bam, tmp_path / "cut.bam", bgzf_block_offsets(bam)[2] + 10)
    with pytest.raises(FormatError, match="truncated"):
        features.coverage(fasta, [truncated], threads=3)
