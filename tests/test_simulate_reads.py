"""Tests of the long-read simulator against independent readings of its outputs (gzip, an
edit-distance aligner written here)."""

from __future__ import annotations

import csv
import gzip
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vaebin.errors import FormatError, ParameterError
from vaebin.io.cami import read_cami_binning
from vaebin.simulate_reads import (
    LongReadConfig,
    LongReadResult,
    read_n50,
    simulate_long_reads,
)

CLI = os.path.join(os.path.dirname(sys.executable), "vaebin-rs")
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def read_sequences(path: Path) -> dict[str, tuple[str, str]]:
    """{name: (sequence, quality)} of a gzipped FASTQ or FASTA file ('' quality for FASTA)."""
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    records: dict[str, tuple[str, str]] = {}
    if lines and lines[0].startswith("@"):
        assert len(lines) % 4 == 0
        for i in range(0, len(lines), 4):
            assert lines[i].startswith("@") and lines[i + 2] == "+"
            records[lines[i][1:]] = (lines[i + 1], lines[i + 3])
        return records
    name = ""
    parts: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith(">"):
            name = line[1:].split()[0]
            parts[name] = []
        else:
            parts[name].append(line)
    return {n: ("".join(p), "") for n, p in parts.items()}


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def truth_lengths(path: Path) -> dict[str, tuple[str, int]]:
    """{read: (genome, _LENGTH)} from a CAMI binning file, checking every read appears once."""
    lines = path.read_text().splitlines()
    assert lines[3] == "@@SEQUENCEID\tBINID\t_LENGTH"
    rows = [line.split("\t") for line in lines[4:]]
    names = [row[0] for row in rows]
    assert len(names) == len(set(names))
    return {name: (genome, int(length)) for name, genome, length in rows}


def source_segment(genomes: dict[str, str], row: dict[str, str]) -> str:
    """The genome bases a read claims to cover, on the read's strand (records are circular)."""
    record = genomes[row["record"]]
    start, length = int(row["start"]), int(row["source_length"])
    segment = (record + record)[start : start + length]
    return segment.translate(COMPLEMENT)[::-1] if row["strand"] == "-" else segment


def edit_operations(read: str, source: str) -> tuple[int, int, int, int]:
    """Unit-cost global alignment: (distance, substitutions, insertions, deletions) of `read`
    against `source`, one numpy row at a time and a pure-Python traceback."""
    a = np.frombuffer(read.encode(), np.uint8)
    b = np.frombuffer(source.encode(), np.uint8)
    n, m = len(a), len(b)
    columns = np.arange(m + 1)
    table = np.empty((n + 1, m + 1), dtype=np.int64)
    table[0] = columns
    for i in range(1, n + 1):
        row = np.empty(m + 1, dtype=np.int64)
        row[0] = i
        row[1:] = np.minimum(table[i - 1, :-1] + (a[i - 1] != b), table[i - 1, 1:] + 1)
        # A run of deletions along the row: table[i, j] = min over k <= j of row[k] + (j - k).
        table[i] = np.minimum.accumulate(row - columns) + columns
    i, j = n, m
    substitutions = insertions = deletions = 0
    while i > 0 or j > 0:
        mismatch = int(i > 0 and j > 0 and a[i - 1] != b[j - 1])
        if i > 0 and j > 0 and table[i, j] == table[i - 1, j - 1] + mismatch:
            substitutions += mismatch
            i, j = i - 1, j - 1
        elif i > 0 and table[i, j] == table[i - 1, j] + 1:
            insertions += 1
            i -= 1
        else:
            deletions += 1
            j -= 1
    return int(table[n, m]), substitutions, insertions, deletions


def short_read_config(**overrides: object) -> LongReadConfig:
    """A small community of ~300 bp reads, short enough to align in a test."""
    settings: dict[str, object] = {
        "n_genomes": 2,
        "n_samples": 1,
        "genome_length_bp": (20_000, 30_000),
        "bases_per_sample": 40_000,
        "read_length_median_bp": 300,
        "read_length_sigma": 0.2,
        "min_read_length_bp": 200,
        "max_read_length_bp": 500,
    }
    return LongReadConfig(**{**settings, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> LongReadResult:
    return simulate_long_reads(tmp_path_factory.mktemp("toy"), LongReadConfig.toy())


@pytest.fixture(scope="module")
def toy_reads(toy: LongReadResult) -> dict[str, tuple[str, str]]:
    reads: dict[str, tuple[str, str]] = {}
    for path in toy.read_files:
        sample = read_sequences(path)
        assert not set(sample) & set(reads), "read names repeat across samples"
        reads.update(sample)
    return reads


def output_bytes(directory: Path) -> dict[str, bytes]:
    # the samplesheet holds absolute paths, so it differs between folders by design
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "samplesheet.csv"
    }


def test_same_seed_gives_identical_outputs(toy: LongReadResult, tmp_path: Path) -> None:
    # the number of compression threads must not change a byte
    again = simulate_long_reads(tmp_path / "again", LongReadConfig.toy(threads=1))
    assert output_bytes(again.outdir) == output_bytes(toy.outdir)
    for first, second in zip(toy.read_files, again.read_files, strict=True):
        assert gzip.decompress(first.read_bytes()) == gzip.decompress(second.read_bytes())
    other = simulate_long_reads(
        tmp_path / "other", LongReadConfig.toy(seed=1, bases_per_sample=200_000)
    )
    assert gzip.decompress(other.read_files[0].read_bytes()) != gzip.decompress(
        toy.read_files[0].read_bytes()
    )
    assert other.truth_binning.read_bytes() != toy.truth_binning.read_bytes()


def test_outputs_and_samplesheet(toy: LongReadResult) -> None:
    names = {"sample1.fq.gz", "sample2.fq.gz", "truth.binning", "reads.tsv", "genomes.tsv"}
    names |= {"samplesheet.csv", "genomes"}
    assert {p.name for p in toy.outdir.iterdir()} == names
    assert sorted(p.name for p in (toy.outdir / "genomes").iterdir()) == [
        f"genome0{g}.fna.gz" for g in range(1, 5)
    ]
    with open(toy.samplesheet, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["sample"] for r in rows] == ["sample1", "sample2"]
    for row, path in zip(rows, toy.read_files, strict=True):
        assert Path(row["reads"]).is_absolute()
        assert Path(row["reads"]).samefile(path)
    # written last, so its presence means the rest is complete
    newest = max(p.stat().st_mtime_ns for p in toy.outdir.rglob("*") if p.is_file())
    assert toy.samplesheet.stat().st_mtime_ns == newest


def test_records_truth_and_read_table_agree(
    toy: LongReadResult, toy_reads: dict[str, tuple[str, str]]
) -> None:
    for sequence, quality in toy_reads.values():
        assert set(sequence) <= set("ACGT")
        assert len(quality) == len(sequence) and len(set(quality)) == 1
    truth = truth_lengths(toy.truth_binning)
    assert read_cami_binning(toy.truth_binning).keys() == truth.keys() == toy_reads.keys()
    assert all(length == len(toy_reads[name][0]) for name, (_, length) in truth.items())
    table = read_tsv(toy.read_table)
    assert [row["read"] for row in table] == list(truth)
    for row in table:
        assert (row["genome"], int(row["length"])) == truth[row["read"]]
        assert row["read"].startswith("S" + row["sample"].removeprefix("sample") + "R")
    counts = Counter(row["sample"] for row in table)
    assert tuple(counts[s] for s in toy.sample_names) == toy.reads_per_sample
    genomes = read_tsv(toy.genome_table)
    for s, sample in enumerate(toy.sample_names, start=1):
        assert sum(int(g[f"reads_{sample}"]) for g in genomes) == counts[sample]
        sample_bases = sum(len(seq) for n, (seq, _) in toy_reads.items() if n.startswith(f"S{s}R"))
        assert sum(int(g[f"bases_{sample}"]) for g in genomes) == sample_bases
        assert sum(float(g[f"abundance_{sample}"]) for g in genomes) == pytest.approx(1, abs=1e-4)
        # the last read crosses the target, so a sample holds just over bases_per_sample
        source = sum(int(r["source_length"]) for r in table if r["sample"] == sample)
        assert 4_000_000 <= source < 4_000_000 + 100_000


def test_read_lengths_have_a_10_kb_n50(
    toy: LongReadResult, toy_reads: dict[str, tuple[str, str]]
) -> None:
    lengths = sorted((len(seq) for seq, _ in toy_reads.values()), reverse=True)
    half, running = sum(lengths) / 2, 0
    for length in lengths:
        running += length
        if running >= half:
            break
    assert length == toy.read_n50_bp == read_n50(lengths)
    assert 8_000 <= length <= 15_000
    sources = [int(row["source_length"]) for row in read_tsv(toy.read_table)]
    assert min(sources) >= 1_000 and max(sources) <= 100_000
    assert 5_000 <= float(np.median(sources)) <= 7_000


def test_error_rates_and_kinds(toy: LongReadResult) -> None:
    table = read_tsv(toy.read_table)
    source = np.array([int(r["source_length"]) for r in table])
    kinds = {k: np.array([int(r[k]) for r in table]) for k in ("substitutions", "insertions")}
    kinds["deletions"] = np.array([int(r["deletions"]) for r in table])
    errors = np.array([int(r["errors"]) for r in table])
    assert np.array_equal(errors, sum(kinds.values()))
    lengths = np.array([int(r["length"]) for r in table])
    assert np.array_equal(lengths, source + kinds["insertions"] - kinds["deletions"])
    overall = errors.sum() / source.sum()
    assert 0.075 <= overall <= 0.085 and overall == pytest.approx(toy.error_rate)
    per_read = errors / source
    assert np.mean((per_read >= 0.04) & (per_read <= 0.14)) >= 0.95
    assert per_read.std() >= 0.01  # rates vary from read to read
    shares = {k: v.sum() / errors.sum() for k, v in kinds.items()}
    assert shares == pytest.approx(
        {"substitutions": 0.3, "insertions": 0.3, "deletions": 0.4}, abs=0.02
    )


def test_recorded_errors_match_an_independent_alignment(tmp_path: Path) -> None:
    result = simulate_long_reads(tmp_path, short_read_config(seed=3))
    reads = read_sequences(result.read_files[0])
    genomes = {
        name: sequence
        for path in result.genome_files
        for name, (sequence, _) in read_sequences(path).items()
    }
    rows = read_tsv(result.read_table)[:40]
    totals = np.zeros(4, dtype=np.int64)
    recorded, source_bp = 0, 0
    strands = set()
    for row in rows:
        found = edit_operations(reads[row["read"]][0], source_segment(genomes, row))
        errors = int(row["errors"])
        assert 0.7 * errors <= found[0] <= errors
        totals += found
        recorded += errors
        source_bp += int(row["source_length"])
        strands.add(row["strand"])
    assert strands == {"+", "-"}
    assert 0.05 <= totals[0] / source_bp <= 0.15
    assert 0.05 <= recorded / source_bp <= 0.15
    assert totals[2] + totals[3] > totals[1]  # indels outnumber substitutions


def test_read_bases_follow_abundance_times_length(tmp_path: Path) -> None:
    config = short_read_config(
        n_genomes=5,
        n_samples=2,
        genome_length_bp=(30_000, 90_000),
        bases_per_sample=3_000_000,
        read_length_median_bp=1_000,
        read_length_sigma=0.3,
        max_read_length_bp=3_000,
        write_genomes=False,
    )
    result = simulate_long_reads(tmp_path, config)
    truth = truth_lengths(result.truth_binning)
    genomes = read_tsv(result.genome_table)
    for s, sample in enumerate(result.sample_names, start=1):
        bases = Counter()
        for name, (genome, length) in truth.items():
            if name.startswith(f"S{s}R"):
                bases[genome] += length
        weight = {
            g["genome"]: float(g[f"abundance_{sample}"]) * int(g["length_bp"]) for g in genomes
        }
        for genome, expected in weight.items():
            expected_share = expected / sum(weight.values())
            observed_share = bases[genome] / sum(bases.values())
            assert observed_share == pytest.approx(expected_share, abs=0.02 + 0.1 * expected_share)


def test_fasta_output(tmp_path: Path) -> None:
    config = LongReadConfig.toy(fasta=True, bases_per_sample=200_000, write_genomes=False)
    result = simulate_long_reads(tmp_path, config)
    assert [p.name for p in result.read_files] == ["sample1.fa.gz", "sample2.fa.gz"]
    assert not (tmp_path / "genomes").exists() and result.genome_files == ()
    text = gzip.decompress(result.read_files[0].read_bytes()).decode()
    lines = text.splitlines()
    assert all(line.startswith(">") for line in lines[0::2])
    assert all(set(line) <= set("ACGT") for line in lines[1::2])
    truth = truth_lengths(result.truth_binning)
    for path in result.read_files:
        for name, (sequence, _) in read_sequences(path).items():
            assert truth[name][1] == len(sequence)


def test_genome_fastas_are_used(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)

    def random_sequence(length: int) -> str:
        return "".join(rng.choice(list("ACGT"), length))

    alpha = {"chromosome": random_sequence(3_000), "plasmid": random_sequence(2_500)}
    alpha["tiny"] = random_sequence(100)  # shorter than any read: never sampled
    beta = {"contig_1": random_sequence(4_000)}
    alpha_path, beta_path = tmp_path / "alpha.fna", tmp_path / "beta.fa.gz"
    lines = []
    for name, sequence in alpha.items():
        lines.append(f">{name} a description")
        # multi-line, lower case: as real FASTA files can be
        lines += [sequence[i : i + 60].lower() for i in range(0, len(sequence), 60)]
    alpha_path.write_text("\n".join(lines) + "\n")
    beta_path.write_bytes(gzip.compress(f">contig_1\n{beta['contig_1']}\n".encode()))

    config = LongReadConfig.toy(
        genome_fastas=(alpha_path, beta_path),
        error_rate=0.0,
        bases_per_sample=60_000,
        read_length_median_bp=800,
        read_length_sigma=0.3,
        min_read_length_bp=200,
        max_read_length_bp=2_000,
    )
    assert config.n_genomes == 2
    result = simulate_long_reads(tmp_path / "out", config)
    assert [g.genome_id for g in result.genomes] == ["alpha", "beta"]
    assert [g.length_bp for g in result.genomes] == [5_600, 4_000]
    records = {**alpha, **beta}
    reads = {}
    for path in result.read_files:
        reads.update(read_sequences(path))
    table = read_tsv(result.read_table)
    assert {row["record"] for row in table} == {"chromosome", "plasmid", "contig_1"}
    for row in table:
        sequence = reads[row["read"]][0]
        assert sequence == source_segment(records, row)
        circular = records[row["record"]] * 2
        assert sequence in circular or sequence.translate(COMPLEMENT)[::-1] in circular
        assert row["genome"] == ("beta" if row["record"] == "contig_1" else "alpha")
        assert row["errors"] == "0"


def test_bad_genome_fastas_are_reported(tmp_path: Path) -> None:
    text = tmp_path / "notes.fna"
    text.write_text("ACGT\n")
    with pytest.raises(FormatError, match=r"notes\.fna: not a FASTA file"):
        simulate_long_reads(tmp_path / "a", LongReadConfig(genome_fastas=(text,)))
    short = tmp_path / "short.fa"
    short.write_text(">s\nACGTACGT\n")
    with pytest.raises(ParameterError, match="genome short has no record of at least"):
        simulate_long_reads(tmp_path / "b", LongReadConfig(genome_fastas=(short,)))
    with pytest.raises(ParameterError, match="different names"):
        LongReadConfig(genome_fastas=(short, tmp_path / "x" / "short.fa.gz"))


def test_settings_are_checked() -> None:
    with pytest.raises(ParameterError, match="error_rate"):
        LongReadConfig(error_rate=0.9)
    with pytest.raises(ParameterError, match="sum to 1"):
        LongReadConfig(substitution_fraction=0.5)
    with pytest.raises(ParameterError, match="min_read_length_bp"):
        LongReadConfig(min_read_length_bp=10)
    with pytest.raises(ParameterError, match="unknown preset"):
        LongReadConfig.preset("huge")
    with pytest.raises(ParameterError, match="unknown LongReadConfig fields"):
        LongReadConfig().with_overrides(coverage=3)
    assert LongReadConfig.preset("small", seed=2).n_genomes == 8
    assert LongReadConfig.benchmark().bases_per_sample == 250_000_000


def test_cli_simulates_long_reads(tmp_path: Path) -> None:
    outdir = tmp_path / "sim"
    command = [CLI, "simulate", "--long-reads", "--preset", "toy", "--outdir", str(outdir)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (outdir / "samplesheet.csv").is_file()
    assert "read N50" in result.stderr
    with open(outdir / "samplesheet.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(row["reads"]).name for row in rows] == ["sample1.fq.gz", "sample2.fq.gz"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--long-reads", "--error-rate", "0.9"], "error_rate must be in [0, 0.3]"),
        (["--long-reads", "--genome-fasta", "missing.fna"], "missing.fna"),
        (["--fasta"], "--fasta needs --long-reads"),
    ],
)
def test_cli_reports_bad_settings_in_one_line(
    tmp_path: Path, options: list[str], message: str
) -> None:
    command = [CLI, "simulate", "--preset", "toy", "--outdir", str(tmp_path / "x"), *options]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    if "--long-reads" in options:
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "samplesheet.csv").exists()
