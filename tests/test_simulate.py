"""Tests of the community simulator against independent readings of its outputs (pysam, gzip)."""

from __future__ import annotations

import csv
import gzip
import itertools
import re
from pathlib import Path

import numpy as np
import pysam
import pytest

from vaebin.errors import FormatError, ParameterError
from vaebin.io.cami import read_cami_binning, write_cami_binning
from vaebin.simulate import SimulationConfig, SimulationResult, simulate_community

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def read_fasta(path: Path) -> dict[str, str]:
    """Plain reference FASTA reader (names keep their order)."""
    records: dict[str, list[str]] = {}
    with gzip.open(path, "rt") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.startswith(">"):
                current = records.setdefault(line[1:], [])
            else:
                current.append(line)
    return {name: "".join(parts) for name, parts in records.items()}


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def tetranucleotide_frequencies(sequence: str) -> np.ndarray:
    """Frequencies of the 256 4-mers, counted with numpy."""
    codes = np.frombuffer(sequence.encode(), dtype=np.uint8)
    lookup = np.zeros(256, dtype=np.int64)
    lookup[np.frombuffer(b"ACGT", np.uint8)] = [0, 1, 2, 3]
    codes = lookup[codes]
    index = codes[:-3] * 64 + codes[1:-2] * 16 + codes[2:-1] * 4 + codes[3:]
    counts = np.bincount(index, minlength=256)
    return counts / counts.sum()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    config = SimulationConfig.toy(write_genomes=True, threads=3)
    return simulate_community(tmp_path_factory.mktemp("toy"), config)


@pytest.fixture(scope="module")
def contigs(toy: SimulationResult) -> dict[str, str]:
    return read_fasta(toy.contigs_fasta)


def output_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_seed_gives_byte_identical_outputs(toy: SimulationResult, tmp_path: Path) -> None:
    # a different number of compression threads must not change a byte
    again = simulate_community(tmp_path, SimulationConfig.toy(write_genomes=True, threads=1))
    assert output_bytes(again.outdir) == output_bytes(toy.outdir)
    # gzip member header carries no timestamp and no file name
    header = toy.contigs_fasta.read_bytes()[:10]
    assert header[3] == 0 and header[4:8] == b"\0\0\0\0"


def test_different_seed_gives_different_community(toy: SimulationResult, tmp_path: Path) -> None:
    other = simulate_community(tmp_path, SimulationConfig.toy(seed=1))
    assert other.contigs_fasta.read_bytes() != toy.contigs_fasta.read_bytes()
    assert other.bams[0].read_bytes() != toy.bams[0].read_bytes()


def test_outputs_and_samplesheet(toy: SimulationResult) -> None:
    names = {"contigs.fna.gz", "truth.binning", "genomes.tsv", "contigs.tsv", "samplesheet.csv"}
    names |= {"genomes.fna.gz", "sample1.bam", "sample1.bam.bai", "sample2.bam", "sample2.bam.bai"}
    assert {p.name for p in toy.outdir.iterdir()} == names
    with open(toy.samplesheet, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["sample"] for r in rows] == ["sample1", "sample2"]
    for row, bam in zip(rows, toy.bams, strict=True):
        assert row["group"] == "sim"
        assert (toy.samplesheet.parent / row["bam"]).samefile(bam)
        assert (toy.samplesheet.parent / row["contigs"]).samefile(toy.contigs_fasta)


def test_contig_names_unique_and_truth_complete(
    toy: SimulationResult, contigs: dict[str, str]
) -> None:
    with gzip.open(toy.contigs_fasta, "rt") as handle:
        headers = [line[1:].strip() for line in handle if line.startswith(">")]
    assert len(headers) == len(set(headers)) == toy.n_contigs
    truth = read_cami_binning(toy.truth_binning)
    assert list(truth) == headers
    lines = toy.truth_binning.read_text().splitlines()
    assert lines[:4] == [
        "@Version:0.9.1",
        "@SampleID:vaebin_sim",
        "",
        "@@SEQUENCEID\tBINID\t_LENGTH",
    ]
    for line in lines[4:]:
        name, _genome, length = line.split("\t")
        assert int(length) == len(contigs[name]) >= 1000
    genome_ids = {g.genome_id for g in toy.genomes}
    assert set(truth.values()) <= genome_ids
    assert sum(len(s) for s in contigs.values()) == toy.contig_bp


def test_fasta_lines_are_80_columns(toy: SimulationResult) -> None:
    with gzip.open(toy.contigs_fasta, "rt") as handle:
        text = handle.read()
    for record in text.split(">")[1:]:
        lines = record.rstrip("\n").split("\n")[1:]
        assert all(len(line) == 80 for line in lines[:-1])
        assert 0 < len(lines[-1]) <= 80


def test_contigs_are_the_genome_slices_they_claim(
    toy: SimulationResult, contigs: dict[str, str]
) -> None:
    assert toy.genomes_fasta is not None
    genomes = read_fasta(toy.genomes_fasta)
    truth = read_cami_binning(toy.truth_binning)
    table = read_tsv(toy.contig_table)
    assert [row["contig"] for row in table] == list(contigs)
    strands = set()
    for row in table:
        piece = genomes[row["genome"]][int(row["start"]) : int(row["end"])]
        if row["strand"] == "-":
            piece = piece.translate(COMPLEMENT)[::-1]
        strands.add(row["strand"])
        assert contigs[row["contig"]] == piece
        assert truth[row["contig"]] == row["genome"]
    assert strands == {"+", "-"}
    by_genome = {g.genome_id: g for g in toy.genomes}
    for genome_id, sequence in genomes.items():
        assert by_genome[genome_id].length_bp == len(sequence)


def test_bam_is_sorted_indexed_and_matches_contigs(
    toy: SimulationResult, contigs: dict[str, str]
) -> None:
    for bam_path in toy.bams:
        assert Path(f"{bam_path}.bai").exists()
        with pysam.AlignmentFile(bam_path) as bam:
            assert bam.header.to_dict()["HD"]["SO"] == "coordinate"
            assert list(bam.references) == list(contigs)
            assert list(bam.lengths) == [len(s) for s in contigs.values()]
            assert bam.check_index()
            keys = np.array([(r.reference_id << 32) + r.reference_start for r in bam])
            assert np.all(np.diff(keys) >= 0)
            assert keys.size == bam.mapped
            name = bam.references[3]
            assert bam.count(name) == bam.get_index_statistics()[3].mapped > 0


def test_reads_agree_with_cigar_nm_and_mates(
    toy: SimulationResult, contigs: dict[str, str]
) -> None:
    mismatches = bases = 0
    reads_by_name: dict[str, list[pysam.AlignedSegment]] = {}
    with pysam.AlignmentFile(toy.bams[0]) as bam:
        for read in itertools.islice(bam, 0, None, 7):
            assert read.cigartuples == [(0, 150)]
            assert read.mapping_quality in (0, 60)
            reference = contigs[read.reference_name][read.reference_start : read.reference_end]
            assert read.reference_end <= len(contigs[read.reference_name])
            observed = sum(a != b for a, b in zip(read.query_sequence, reference, strict=True))
            assert read.get_tag("NM") == observed
            mismatches += observed
            bases += read.query_length
        for read in bam.fetch(bam.references[5]):
            reads_by_name.setdefault(read.query_name, []).append(read)
    # the mates of a pair point at each other and share one template
    assert reads_by_name
    for pair in reads_by_name.values():
        assert len(pair) == 2
        first, second = sorted(pair, key=lambda r: r.is_read2)
        assert first.is_read1 and second.is_read2
        assert first.is_proper_pair and first.is_reverse != second.is_reverse
        assert first.next_reference_start == second.reference_start
        assert second.next_reference_start == first.reference_start
        assert first.template_length == -second.template_length != 0
        assert 150 <= abs(first.template_length) <= 350 + 6 * 50
        assert first.mate_is_reverse == second.is_reverse
    rate = mismatches / bases
    assert 0.8 * 0.005 < rate < 1.2 * 0.005


def test_read_counts_follow_abundance_times_length(toy: SimulationResult) -> None:
    truth = read_cami_binning(toy.truth_binning)
    abundance = {g.genome_id: np.array(g.abundance) for g in toy.genomes}
    for sample, bam_path in enumerate(toy.bams):
        with pysam.AlignmentFile(bam_path) as bam:
            stats = bam.get_index_statistics()
            lengths = dict(zip(bam.references, bam.lengths, strict=True))
        fragments = np.array([s.mapped for s in stats]) / 2  # mates come in pairs
        weight = np.array([abundance[truth[s.contig]][sample] * lengths[s.contig] for s in stats])
        expected = fragments.sum() * weight / weight.sum()
        kept = expected >= 5
        chi_square = np.sum((fragments[kept] - expected[kept]) ** 2 / expected[kept])
        assert 0.6 < chi_square / (kept.sum() - 1) < 1.6
        # the same counts compared with length alone are far off: abundance matters
        contig_lengths = np.array([lengths[s.contig] for s in stats])
        by_length = fragments.sum() * contig_lengths / contig_lengths.sum()
        assert np.sum((fragments - by_length) ** 2 / by_length) / len(stats) > 10


def test_related_genomes_are_closer_in_tetranucleotide_frequency(toy: SimulationResult) -> None:
    assert toy.genomes_fasta is not None
    genomes = read_fasta(toy.genomes_fasta)
    profile = {name: tetranucleotide_frequencies(seq) for name, seq in genomes.items()}
    family = {g.genome_id: g.parent or g.genome_id for g in toy.genomes}
    related, unrelated = [], []
    for a, b in itertools.combinations(genomes, 2):
        distance = float(np.abs(profile[a] - profile[b]).sum())
        (related if family[a] == family[b] else unrelated).append(distance)
    assert related, "the toy preset must contain related genomes"
    assert max(related) < min(unrelated)


def test_strains_multisplit_names_and_single_end(tmp_path: Path) -> None:
    config = SimulationConfig.toy(
        n_genomes=4,
        n_samples=3,
        genome_length_bp=(20_000, 30_000),
        related_fraction=0.0,
        strain_fraction=0.5,
        strain_divergence=0.03,
        contig_naming="multisplit",
        paired=False,
        reads_per_sample=2_000,
        write_genomes=True,
    )
    result = simulate_community(tmp_path, config)
    strains = [g for g in result.genomes if g.relation == "strain"]
    assert len(strains) == 2
    genomes = read_fasta(tmp_path / "genomes.fna.gz")
    for strain in strains:
        assert strain.parent is not None
        a = np.frombuffer(genomes[strain.genome_id].encode(), np.uint8)
        b = np.frombuffer(genomes[strain.parent].encode(), np.uint8)
        assert abs(np.mean(a != b) - 0.03) < 0.005
    names = list(read_cami_binning(result.truth_binning))
    assert len(set(names)) == len(names)
    matches = [re.fullmatch(r"S([123])C([0-9]+)", name) for name in names]
    assert all(matches)
    samples = [int(m.group(1)) for m in matches if m]
    assert samples == sorted(samples)
    with pysam.AlignmentFile(result.bams[0]) as bam:
        reads = list(bam)
    assert len(reads) == 2_000
    assert {r.flag for r in reads} == {0, 16}
    assert all(r.next_reference_id == -1 and r.template_length == 0 for r in reads)


def test_cami_round_trip_and_column_order(tmp_path: Path) -> None:
    path = write_cami_binning(
        tmp_path / "bins.binning", ["c1", "c2", "c3"], ["b1", "b1", "b2"], sample_id="s"
    )
    assert read_cami_binning(path) == {"c1": "b1", "c2": "b1", "c3": "b2"}
    other = tmp_path / "taxid.binning"
    other.write_text(
        "# comment\n@Version:0.9.0\n@SampleID:x\n\n@@SEQUENCEID\tTAXID\tBINID\nc1\t9\tb7\n"
    )
    assert read_cami_binning(other) == {"c1": "b7"}
    broken = tmp_path / "broken.binning"
    broken.write_text("@@SEQUENCEID\tTAXID\n")
    with pytest.raises(FormatError, match=r"broken\.binning"):
        read_cami_binning(broken)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ParameterError, match="read_length"):
        SimulationConfig(read_length=5)
    with pytest.raises(ParameterError, match="unknown preset"):
        SimulationConfig.preset("huge")
    with pytest.raises(ParameterError, match="unknown SimulationConfig fields"):
        SimulationConfig().with_overrides(genome_count=3)
    config = SimulationConfig.preset("small").with_overrides(seed=7, n_genomes=None)
    assert (config.seed, config.n_genomes, config.n_samples) == (7, 12, 3)
    assert SimulationConfig.benchmark().reads_per_sample * 4 >= 20_000_000
