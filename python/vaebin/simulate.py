"""Seeded synthetic metagenomes: genomes, contigs, per-sample BAMs and the CAMI ground truth.

Every output is a pure function of :class:`SimulationConfig` (seed included): no timestamps in the
gzip or BGZF headers, fixed BAM headers, and independent random streams for genomes, contigs,
abundances and each sample's reads, so e.g. adding a sample leaves the genomes unchanged.

Layout written by :func:`simulate_community` into ``outdir``::

    contigs.fna.gz          contigs, 80-column lines, shuffled order
    sample<N>.bam(.bai)     coordinate-sorted, indexed reads mapped to the contigs
    truth.binning           CAMI binning file (contig -> genome, with _LENGTH)
    genomes.tsv             genome, parent, relation, length, GC, abundance per sample
    contigs.tsv             contig, genome, 0-based start/end on genome, strand, reads per sample
    samplesheet.csv         sample,bam,group,contigs  (paths relative to the samplesheet's folder)
    genomes.fna.gz          only with ``write_genomes=True``
"""

from __future__ import annotations

import csv
import gzip
import os
import struct
import time
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal

import numpy as np

from vaebin.errors import ParameterError
from vaebin.io import atomic_path
from vaebin.io.cami import write_cami_binning

__all__ = [
    "GenomeInfo",
    "SimulationConfig",
    "SimulationResult",
    "simulate_community",
]

# Bases are coded 0..3 = A, C, G, T, so the complement of code b is 3 - b.
_ASCII_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
# BAM's 4-bit base codes for A, C, G, T.
_BGZF_BLOCK_INPUT_BYTES = 0xFF00
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_FASTA_LINE_WIDTH = 80
_READ_QUALITY = 30
_PROGRAM_ID = "vaebin-simulate"


@dataclass(frozen=True)
class SimulationConfig:
    """Every knob of the simulator; presets are the ``toy``/``small``/``benchmark`` constructors."""

    seed: int = 0
    n_genomes: int = 6
    n_samples: int = 2
    # Genome lengths are drawn uniformly from this closed range (strains copy their parent's).
    genome_length_bp: tuple[int, int] = (120_000, 180_000)
    # Composition model: order-k Markov chain, rows ~ Dirichlet(concentration * GC-biased bases).
    markov_order: int = 4
    composition_concentration: float = 6.0
    gc_range: tuple[float, float] = (0.30, 0.70)
    # Fraction of genomes whose Markov model is a slight perturbation of another genome's
    # (rows ~ Dirichlet(related_concentration * parent row)): similar k-mer profiles.
    related_fraction: float = 0.34
    related_concentration: float = 300.0
    # Fraction of genomes that are strains: a parent's sequence with point mutations.
    strain_fraction: float = 0.0
    strain_divergence: float = 0.03
    # log(abundance[g, s]) = genome_mean[g] + noise[g, s], both normal with these sigmas.
    abundance_sigma: float = 1.0
    sample_sigma: float = 0.8
    # Contig lengths are log-normal; pieces under min_contig_length_bp become assembly gaps.
    contig_length_median_bp: int = 3_000
    contig_length_sigma: float = 1.0
    min_contig_length_bp: int = 1_000
    reverse_complement_fraction: float = 0.5
    contig_naming: Literal["plain", "multisplit"] = "plain"
    multisplit_separator: str = "C"
    # Reads: reads_per_sample (count of BAM records) wins over mean_coverage when set.
    mean_coverage: float = 10.0
    reads_per_sample: int | None = None
    read_length: int = 150
    paired: bool = True
    fragment_length_mean: float = 350.0
    fragment_length_sd: float = 50.0
    substitution_rate: float = 0.005
    mapq: int = 60
    # Fragments given MAPQ 0, as a mapper does for repeats; exercises MAPQ filters downstream.
    low_mapq_fraction: float = 0.01
    compression_level: int = 6
    # Threads for BGZF compression; 0 means one per CPU (capped at 8). Output is the same.
    threads: int = 0
    write_genomes: bool = False
    cami_sample_id: str = "vaebin_sim"

    def __post_init__(self) -> None:
        """Reject settings that cannot produce a valid community."""
        low, high = self.genome_length_bp
        problems = []
        if self.n_genomes < 1 or self.n_samples < 1:
            problems.append("n_genomes and n_samples must be at least 1")
        if not 0 < low <= high:
            problems.append("genome_length_bp must be a range 0 < min <= max")
        if low < self.min_contig_length_bp:
            problems.append("genome_length_bp minimum is below min_contig_length_bp")
        if not 1 <= self.markov_order <= 8:
            problems.append("markov_order must be between 1 and 8")
        if not 0.0 < self.gc_range[0] <= self.gc_range[1] < 1.0:
            problems.append("gc_range must lie inside (0, 1)")
        if not 0.0 <= self.related_fraction + self.strain_fraction < 1.0:
            problems.append("related_fraction + strain_fraction must be in [0, 1)")
        if not 0.0 <= self.strain_divergence <= 0.5:
            problems.append("strain_divergence must be in [0, 0.5]")
        if not 20 <= self.read_length <= 1_000:
            problems.append("read_length must be between 20 and 1000")
        if self.min_contig_length_bp < self.read_length:
            problems.append("min_contig_length_bp must be at least read_length")
        if not 0.0 <= self.substitution_rate <= 0.2:
            problems.append("substitution_rate must be in [0, 0.2]")
        if not 0.0 <= self.low_mapq_fraction <= 1.0:
            problems.append("low_mapq_fraction must be in [0, 1]")
        if not 0 <= self.mapq <= 254:
            problems.append("mapq must be between 0 and 254")
        if not 0 <= self.compression_level <= 9:
            problems.append("compression_level must be between 0 and 9")
        if self.reads_per_sample is not None and self.reads_per_sample < 0:
            problems.append("reads_per_sample must be non-negative")
        if self.contig_naming not in ("plain", "multisplit"):
            problems.append("contig_naming must be 'plain' or 'multisplit'")
        if problems:
            raise ParameterError("invalid simulation settings: " + "; ".join(problems))

    @classmethod
    def toy(cls, **overrides: object) -> SimulationConfig:
        """6 genomes of 120-180 kbp, 2 samples, ~10x: about a second; for tests."""
        return cls(**overrides)  # the dataclass defaults are the toy community

    @classmethod
    def small(cls, **overrides: object) -> SimulationConfig:
        """12 genomes of 0.5-1 Mbp (4 related), 3 samples, ~10x; for the demo."""
        settings: dict[str, object] = {
            "n_genomes": 12,
            "n_samples": 3,
            "genome_length_bp": (500_000, 1_000_000),
            "related_fraction": 0.25,
            "mean_coverage": 10.0,
        }
        return cls(**{**settings, **overrides})

    @classmethod
    def benchmark(cls, **overrides: object) -> SimulationConfig:
        """32 genomes of 1-5 Mbp (8 related models, 4 strains), 4 samples, 22 M reads."""
        settings: dict[str, object] = {
            "n_genomes": 32,
            "n_samples": 4,
            "genome_length_bp": (1_000_000, 5_000_000),
            "related_fraction": 0.25,
            "strain_fraction": 0.125,
            "contig_length_median_bp": 4_000,
            "contig_length_sigma": 1.1,
            "reads_per_sample": 5_500_000,
            "compression_level": 1,
        }
        return cls(**{**settings, **overrides})

    @classmethod
    def preset(cls, name: str, **overrides: object) -> SimulationConfig:
        """The preset called ``name`` (toy, small or benchmark) with ``overrides`` applied."""
        constructors = {"toy": cls.toy, "small": cls.small, "benchmark": cls.benchmark}
        if name not in constructors:
            raise ParameterError(
                f"unknown preset {name!r}; choose one of {', '.join(constructors)}"
            )
        return constructors[name](**overrides)

    def with_overrides(self, **overrides: object) -> SimulationConfig:
        """A copy with the given fields replaced, ignoring those passed as None."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ParameterError(f"unknown SimulationConfig fields: {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class GenomeInfo:
    """One simulated genome: its id, ancestry, size, GC and relative abundance per sample."""

    genome_id: str
    parent: str | None
    relation: Literal["independent", "related_model", "strain"]
    length_bp: int
    gc: float
    abundance: tuple[float, ...]
    n_contigs: int
    contig_bp: int


@dataclass(frozen=True)
class SimulationResult:
    """Paths of everything :func:`simulate_community` wrote, plus the genome table and counts."""

    outdir: Path
    contigs_fasta: Path
    bams: tuple[Path, ...]
    truth_binning: Path
    genome_table: Path
    contig_table: Path
    samplesheet: Path
    genomes_fasta: Path | None
    sample_names: tuple[str, ...]
    genomes: tuple[GenomeInfo, ...]
    n_contigs: int
    contig_bp: int
    reads_per_sample: tuple[int, ...]
    seconds: float


@dataclass
class _Contigs:
    """Contigs in genome order; ``fasta_order`` lists them in output order."""

    genome: np.ndarray  # genome index per contig
    start: np.ndarray  # 0-based start on the genome
    length: np.ndarray
    reverse: np.ndarray  # bool: contig is the reverse complement of the genome slice
    sequence: np.ndarray  # all contig sequences (already oriented), concatenated, codes 0..3
    offset: np.ndarray  # start of each contig in ``sequence``
    fasta_order: np.ndarray  # contig indices in output order
    names: list[str]  # names in output order


def simulate_community(outdir: Path, config: SimulationConfig | None = None) -> SimulationResult:
    """Simulate a community and write contigs, BAMs, truth and tables into ``outdir``."""
    began = time.perf_counter()
    config = config or SimulationConfig()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    root = np.random.SeedSequence(config.seed)
    genome_seed, contig_seed, abundance_seed, reads_seed = root.spawn(4)
    threads = config.threads or min(os.cpu_count() or 1, 8)

    genome_ids = [f"genome{i + 1:02d}" for i in range(config.n_genomes)]
    sample_names = [f"sample{s + 1}" for s in range(config.n_samples)]
    parents, relations, sequences = _simulate_genomes(config, np.random.default_rng(genome_seed))
    abundance = _simulate_abundance(config, np.random.default_rng(abundance_seed))
    contigs = _cut_contigs(config, sequences, abundance, np.random.default_rng(contig_seed))

    contigs_fasta = outdir / "contigs.fna.gz"
    with atomic_path(contigs_fasta) as tmp:
        _write_fasta_gz(
            tmp,
            contigs.names,
            contigs.sequence,
            contigs.offset[contigs.fasta_order],
            contigs.length[contigs.fasta_order],
            config.compression_level,
        )
    genomes_fasta = None
    if config.write_genomes:
        genomes_fasta = outdir / "genomes.fna.gz"
        genome_lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        with atomic_path(genomes_fasta) as tmp:
            _write_fasta_gz(
                tmp,
                genome_ids,
                np.concatenate(sequences),
                np.concatenate([[0], np.cumsum(genome_lengths)[:-1]]),
                genome_lengths,
                config.compression_level,
            )

    ordered_genome = contigs.genome[contigs.fasta_order]
    ordered_length = contigs.length[contigs.fasta_order]
    truth = outdir / "truth.binning"
    write_cami_binning(
        truth,
        contigs.names,
        [genome_ids[g] for g in ordered_genome],
        ordered_length,
        sample_id=config.cami_sample_id,
    )

    contig_bp = int(contigs.length.sum())
    if config.reads_per_sample is not None:
        n_reads = config.reads_per_sample
    else:
        n_reads = round(config.mean_coverage * contig_bp / config.read_length)
    if config.paired:
        n_reads -= n_reads % 2
    bams = []
    reads_per_contig = []
    for sample, sample_seed in enumerate(reads_seed.spawn(config.n_samples)):
        bam = outdir / f"{sample_names[sample]}.bam"
        counts = _write_sample_bam(
            bam,
            sample_names[sample],
            config,
            contigs,
            abundance[:, sample],
            n_reads,
            np.random.default_rng(sample_seed),
            threads,
        )
        bams.append(bam)
        reads_per_contig.append(counts)

    genomes = _genome_infos(
        genome_ids, parents, relations, sequences, abundance, contigs, config.n_genomes
    )
    genome_table = outdir / "genomes.tsv"
    _write_genome_table(genome_table, genomes, sample_names)
    contig_table = outdir / "contigs.tsv"
    _write_contig_table(contig_table, contigs, genome_ids, sample_names, reads_per_contig)
    samplesheet = outdir / "samplesheet.csv"
    _write_samplesheet(samplesheet, sample_names, bams, contigs_fasta)

    return SimulationResult(
        outdir=outdir,
        contigs_fasta=contigs_fasta,
        bams=tuple(bams),
        truth_binning=truth,
        genome_table=genome_table,
        contig_table=contig_table,
        samplesheet=samplesheet,
        genomes_fasta=genomes_fasta,
        sample_names=tuple(sample_names),
        genomes=tuple(genomes),
        n_contigs=len(contigs.names),
        contig_bp=contig_bp,
        reads_per_sample=tuple(int(c.sum()) for c in reads_per_contig),
        seconds=time.perf_counter() - began,
    )


# --------------------------------------------------------------------------------------------
# genomes


def _simulate_genomes(
    config: SimulationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
    """Draw genome families, Markov models and sequences.

    Returns the parent index of each genome (-1 for none), its relation and its sequence.
    """
    n = config.n_genomes
    n_strains = round(config.strain_fraction * n)
    n_independent = max(1, n - round(config.related_fraction * n) - n_strains)
    n_related = n - n_independent - n_strains
    relations = (
        ["independent"] * n_independent + ["related_model"] * n_related + ["strain"] * n_strains
    )
    parent = np.full(n, -1, dtype=np.int64)
    parent[n_independent:] = rng.integers(0, n_independent, n - n_independent)

    n_states = 4**config.markov_order
    gc = rng.uniform(*config.gc_range, size=n)
    tables = np.empty((n, n_states, 4))
    for g in range(n):
        if parent[g] < 0:
            bases = np.array([1 - gc[g], gc[g], gc[g], 1 - gc[g]]) / 2
            alpha = np.broadcast_to(config.composition_concentration * bases, (n_states, 4))
        else:
            alpha = config.related_concentration * tables[parent[g]]
        draws = rng.standard_gamma(np.maximum(alpha, 1e-3)) + 1e-12
        tables[g] = draws / draws.sum(axis=1, keepdims=True)

    low, high = config.genome_length_bp
    lengths = rng.integers(low, high + 1, size=n)
    is_strain = np.array(relations) == "strain"
    lengths[is_strain] = lengths[parent[is_strain]]
    generated = np.flatnonzero(~is_strain)
    cumulative = np.cumsum(tables[generated, :, :3], axis=2).astype(np.float32)
    sampled = _sample_markov(cumulative, lengths[generated], config.markov_order, rng)
    sequences: list[np.ndarray] = [np.empty(0, np.uint8)] * n
    for g, sequence in zip(generated, sampled, strict=True):
        sequences[g] = sequence
    for g in np.flatnonzero(is_strain):
        sequences[g] = _mutate(sequences[parent[g]], config.strain_divergence, rng)
    return parent, relations, sequences


def _sample_markov(
    cumulative: np.ndarray, lengths: np.ndarray, order: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Sample sequences from order-k Markov chains, all genomes at once.

    Each genome is the concatenation of many independent chains advanced in lockstep, so the
    Python loop runs over chain positions (a few thousand) while numpy handles every chain.
    """
    total = int(lengths.sum())
    chain_length = int(np.clip(np.sqrt(total / 4), 256, 4096))
    chains_per_genome = -(-lengths // chain_length)
    chain_genome = np.repeat(np.arange(len(lengths)), chains_per_genome)
    n_chains = chain_genome.size
    n_states = 4**order
    row_base = chain_genome * n_states
    flat = cumulative.reshape(-1, 3)
    thresholds = [np.ascontiguousarray(flat[:, i]) for i in range(3)]
    state = rng.integers(0, n_states, n_chains)
    mask = n_states - 1
    bases = np.empty((chain_length, n_chains), dtype=np.uint8)
    block = max(1, min(chain_length, (1 << 24) // max(n_chains, 1)))
    for block_start in range(0, chain_length, block):
        uniforms = rng.random((min(block, chain_length - block_start), n_chains), np.float32)
        for step, u in enumerate(uniforms, start=block_start):
            row = row_base + state
            base = (u >= thresholds[0][row]).view(np.uint8)
            base += (u >= thresholds[1][row]).view(np.uint8)
            base += (u >= thresholds[2][row]).view(np.uint8)
            bases[step] = base
            state = ((state << 2) | base) & mask
    # Genes lie on both strands: reverse-complementing half of the gene-sized chains gives the
    # near strand symmetry of real genomes (a k-mer about as common as its reverse complement).
    flipped = rng.random(n_chains) < 0.5
    bases[:, flipped] = 3 - bases[::-1, flipped]
    first_chain = np.concatenate([[0], np.cumsum(chains_per_genome)])
    return [
        np.ascontiguousarray(bases[:, first_chain[g] : first_chain[g + 1]].T).ravel()[: lengths[g]]
        for g in range(len(lengths))
    ]


def _mutate(sequence: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Copy of ``sequence`` with a ``rate`` fraction of positions substituted."""
    mutated = sequence.copy()
    positions = np.unique(rng.integers(0, len(sequence), rng.binomial(len(sequence), rate)))
    mutated[positions] = (mutated[positions] + rng.integers(1, 4, len(positions))) % 4
    return mutated


def _simulate_abundance(config: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """Relative abundance per genome (rows) and sample (columns); each column sums to 1."""
    genome_mean = rng.normal(0.0, config.abundance_sigma, size=(config.n_genomes, 1))
    noise = rng.normal(0.0, config.sample_sigma, size=(config.n_genomes, config.n_samples))
    abundance = np.exp(genome_mean + noise)
    return abundance / abundance.sum(axis=0, keepdims=True)


# --------------------------------------------------------------------------------------------
# contigs


def _cut_contigs(
    config: SimulationConfig,
    sequences: list[np.ndarray],
    abundance: np.ndarray,
    rng: np.random.Generator,
) -> _Contigs:
    """Tile each genome with log-normal pieces; pieces below the minimum length become gaps."""
    mu = np.log(config.contig_length_median_bp)
    genome_ids, starts, lengths = [], [], []
    for g, sequence in enumerate(sequences):
        size = len(sequence)
        expected = size / (
            config.contig_length_median_bp * np.exp(config.contig_length_sigma**2 / 2)
        )
        draws = np.empty(0, dtype=np.int64)
        while draws.sum() < size:
            more = rng.lognormal(mu, config.contig_length_sigma, int(2 * expected) + 16)
            draws = np.concatenate([draws, np.maximum(1, np.rint(more)).astype(np.int64)])
        piece_end = np.minimum(np.cumsum(draws), size)
        piece_start = np.concatenate([[0], piece_end[:-1]])
        keep = piece_end - piece_start >= config.min_contig_length_bp
        genome_ids.append(np.full(int(keep.sum()), g))
        starts.append(piece_start[keep])
        lengths.append((piece_end - piece_start)[keep])
    genome = np.concatenate(genome_ids)
    start = np.concatenate(starts)
    length = np.concatenate(lengths)
    reverse = rng.random(len(genome)) < config.reverse_complement_fraction
    offset = np.concatenate([[0], np.cumsum(length)[:-1]])
    sequence = np.empty(int(length.sum()), dtype=np.uint8)
    for g, genome_sequence in enumerate(sequences):
        members = np.flatnonzero(genome == g)
        if members.size == 0:
            continue
        first, last = members[0], members[-1]
        region = slice(offset[first], offset[last] + length[last])
        # Position i of a contig comes from genome position start + i, or for a reverse contig
        # from start + length - 1 - i, complemented.
        within = np.arange(region.stop - region.start) - np.repeat(
            offset[members] - offset[first], length[members]
        )
        member_start = np.repeat(start[members], length[members])
        member_length = np.repeat(length[members], length[members])
        member_reverse = np.repeat(reverse[members], length[members])
        source = np.where(
            member_reverse, member_start + member_length - 1 - within, member_start + within
        )
        bases = genome_sequence[source]
        sequence[region] = np.where(member_reverse, 3 - bases, bases)

    n_contigs = len(genome)
    shuffled = rng.permutation(n_contigs)
    if config.contig_naming == "multisplit":
        # Each contig comes from the per-sample assembly of a sample where its genome is present,
        # chosen in proportion to the genome's abundance there; the catalogue is grouped by sample.
        weights = abundance[genome]
        cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        u = rng.random(n_contigs)
        sample = np.minimum((u[:, None] >= cumulative).sum(axis=1), config.n_samples - 1)
        fasta_order = shuffled[np.argsort(sample[shuffled], kind="stable")]
        ordered_sample = sample[fasta_order]
        first_of_sample = np.searchsorted(ordered_sample, ordered_sample)
        number = np.arange(n_contigs) - first_of_sample + 1
        sep = config.multisplit_separator
        names = [f"S{s + 1}{sep}{k}" for s, k in zip(ordered_sample, number, strict=True)]
    else:
        fasta_order = shuffled
        width = max(6, len(str(n_contigs)))
        names = [f"contig{i + 1:0{width}d}" for i in range(n_contigs)]
    return _Contigs(genome, start, length, reverse, sequence, offset, fasta_order, names)


# --------------------------------------------------------------------------------------------
# reads and BAM


def _write_sample_bam(
    path: Path,
    sample_name: str,
    config: SimulationConfig,
    contigs: _Contigs,
    genome_abundance: np.ndarray,
    n_reads: int,
    rng: np.random.Generator,
    threads: int,
) -> np.ndarray:
    """Simulate one sample's reads into a sorted, indexed BAM; returns reads per contig."""
    import pysam

    read_length = config.read_length
    n_contigs = len(contigs.names)
    fasta_rank = np.empty(n_contigs, dtype=np.int64)
    fasta_rank[contigs.fasta_order] = np.arange(n_contigs)

    n_fragments = n_reads // 2 if config.paired else n_reads
    weight = genome_abundance[contigs.genome] * contigs.length
    fragment_contig = np.repeat(
        np.arange(n_contigs), rng.multinomial(n_fragments, weight / weight.sum())
    )
    contig_length = contigs.length[fragment_contig]
    if config.paired:
        fragment_length = np.rint(
            rng.normal(config.fragment_length_mean, config.fragment_length_sd, n_fragments)
        ).astype(np.int64)
        fragment_length = np.clip(fragment_length, read_length, contig_length)
    else:
        fragment_length = np.full(n_fragments, read_length, dtype=np.int64)
    fragment_start = (rng.random(n_fragments) * (contig_length - fragment_length + 1)).astype(
        np.int64
    )
    fragment_mapq = np.where(rng.random(n_fragments) < config.low_mapq_fraction, 0, config.mapq)

    if config.paired:
        forward_is_first = rng.random(n_fragments) < 0.5
        reverse_start = fragment_start + fragment_length - read_length
        mate_flags = np.where(forward_is_first, 0x40, 0x80)
        other_flags = np.where(forward_is_first, 0x80, 0x40)
        contig = np.concatenate([fragment_contig, fragment_contig])
        pos = np.concatenate([fragment_start, reverse_start])
        next_pos = np.concatenate([reverse_start, fragment_start])
        flag = np.concatenate([0x1 | 0x2 | 0x20 | mate_flags, 0x1 | 0x2 | 0x10 | other_flags])
        tlen = np.concatenate([fragment_length, -fragment_length])
        mapq = np.concatenate([fragment_mapq, fragment_mapq])
        name_index = np.concatenate([np.arange(n_fragments), np.arange(n_fragments)])
    else:
        contig = fragment_contig
        pos = fragment_start
        next_pos = np.full(n_fragments, -1, dtype=np.int64)
        flag = np.where(rng.random(n_fragments) < 0.5, 0x10, 0)
        tlen = np.zeros(n_fragments, dtype=np.int64)
        mapq = fragment_mapq
        name_index = np.arange(n_fragments)
    ref_id = fasta_rank[contig]
    order = np.argsort(ref_id * (1 << 32) + pos, kind="stable")

    # The header as text, so its tags keep this order (no dates, no command line).
    layout = "paired" if config.paired else "single"
    header_lines = ["@HD\tVN:1.6\tSO:coordinate"]
    header_lines += [
        f"@SQ\tSN:{name}\tLN:{n_bp}"
        for name, n_bp in zip(
            contigs.names, contigs.length[contigs.fasta_order].tolist(), strict=True
        )
    ]
    header_lines.append(f"@RG\tID:{sample_name}\tSM:{sample_name}\tPL:ILLUMINA")
    header_lines.append(f"@PG\tID:{_PROGRAM_ID}\tPN:{_PROGRAM_ID}\tDS:simulated {layout}-end reads")
    header = pysam.AlignmentHeader.from_text("\n".join(header_lines) + "\n")
    name_width = len(str(max(n_fragments - 1, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(contigs.sequence, read_length)
    # Fixed parts of every SAM line: reads align without gaps, with one quality throughout.
    quality = chr(33 + _READ_QUALITY) * read_length
    cigar = f"{read_length}M"
    mate_reference = "=" if config.paired else "*"
    chunk = 1 << 17
    index = path.with_name(f"{path.name}.bai")
    with atomic_path(path) as tmp, atomic_path(index) as index_tmp:
        # pysam (htslib) encodes and compresses the records, on `threads` threads. Records are
        # built from SAM text, the fastest way into pysam measured (toy preset: 2.3 s against
        # 2.1 s for the vectorised hand-written BAM encoder this replaced, same reads).
        with pysam.AlignmentFile(str(tmp), "wb", header=header, threads=threads) as out:
            bam_header = out.header
            for first in range(0, len(order), chunk):
                pick = order[first : first + chunk]
                bases = windows[contigs.offset[contig[pick]] + pos[pick]]  # a copy
                edit_distance = _add_substitutions(bases, config.substitution_rate, rng)
                sequences = _ASCII_BASES[bases].tobytes().decode("ascii")
                rows = zip(
                    name_index[pick].tolist(),
                    flag[pick].tolist(),
                    ref_id[pick].tolist(),
                    (pos[pick] + 1).tolist(),
                    mapq[pick].tolist(),
                    (next_pos[pick] + 1).tolist(),
                    tlen[pick].tolist(),
                    edit_distance.tolist(),
                    strict=True,
                )
                for row, (name, bits, ref, start, quality_of_map, mate, length, nm) in enumerate(
                    rows
                ):
                    sequence = sequences[row * read_length : (row + 1) * read_length]
                    line = (
                        f"{sample_name}.{name:0{name_width}d}\t{bits}\t{contigs.names[ref]}\t"
                        f"{start}\t{quality_of_map}\t{cigar}\t{mate_reference}\t{mate}\t"
                        f"{length}\t{sequence}\t{quality}"
                    )
                    record = pysam.AlignedSegment.fromstring(line, bam_header)
                    record.set_tag("NM", nm, "S")  # uint16 whatever the value, as before
                    out.write(record)
        # samtools index also checks the coordinate order, so a sorting bug fails loudly here.
        pysam.index("-o", str(index_tmp), str(tmp))
    return np.bincount(contig, minlength=n_contigs)


def _add_substitutions(bases: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Substitute a ``rate`` fraction of bases in place; returns the edit distance per read."""
    n_reads, read_length = bases.shape
    total = bases.size
    positions = np.unique(rng.integers(0, total, rng.binomial(total, rate)))
    flat = bases.reshape(-1)
    flat[positions] = (flat[positions] + rng.integers(1, 4, len(positions))) % 4
    return np.bincount(positions // read_length, minlength=n_reads)


class _BgzfWriter:
    """Minimal BGZF writer: 0xFF00-byte blocks deflated in a thread pool, in order."""

    def __init__(self, handle, level: int, threads: int) -> None:
        self._handle = handle
        self._level = level
        self._pending = bytearray()
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= 64 * _BGZF_BLOCK_INPUT_BYTES:
            complete = len(self._pending) - len(self._pending) % _BGZF_BLOCK_INPUT_BYTES
            self._emit(bytes(self._pending[:complete]))
            del self._pending[:complete]

    def close(self) -> None:
        if self._pending:
            self._emit(bytes(self._pending))
            self._pending.clear()
        self._handle.write(_BGZF_EOF)
        if self._pool is not None:
            self._pool.shutdown()

    def _emit(self, data: bytes) -> None:
        view = memoryview(data)
        blocks = [
            view[i : i + _BGZF_BLOCK_INPUT_BYTES]
            for i in range(0, len(data), _BGZF_BLOCK_INPUT_BYTES)
        ]
        compressed: Iterable[bytes] = (
            self._pool.map(self._block, blocks) if self._pool else map(self._block, blocks)
        )
        for block in compressed:
            self._handle.write(block)

    def _block(self, data: memoryview) -> bytes:
        deflater = zlib.compressobj(self._level, zlib.DEFLATED, -15)
        payload = deflater.compress(data) + deflater.flush()
        header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
        total = len(header) + 2 + len(payload) + 8
        trailer = struct.pack("<II", zlib.crc32(data), len(data))
        return header + struct.pack("<H", total - 1) + payload + trailer


# --------------------------------------------------------------------------------------------
# text outputs


def _write_fasta_gz(
    path: Path,
    names: Sequence[str],
    sequence: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    level: int,
) -> None:
    """Write records (slices of ``sequence``) as gzipped FASTA, 80 columns, gzip mtime 0."""
    headers = [f">{name}\n".encode() for name in names]
    header_length = np.array([len(h) for h in headers], dtype=np.int64)
    lines = -(-lengths // _FASTA_LINE_WIDTH)
    record_size = header_length + lengths + lines
    batch_limit = 1 << 23
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", level, raw, mtime=0) as handle:
        first = 0
        while first < len(names):
            # Group records into batches of ~8 MB so index arrays stay small.
            last = int(np.searchsorted(np.cumsum(record_size[first:]), batch_limit)) + first + 1
            last = min(last, len(names))
            batch = slice(first, last)
            sizes = record_size[batch]
            out_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            out = np.full(int(sizes.sum()), ord("\n"), dtype=np.uint8)
            head = np.frombuffer(b"".join(headers[batch]), dtype=np.uint8)
            head_within = np.arange(head.size) - np.repeat(
                np.concatenate([[0], np.cumsum(header_length[batch])[:-1]]), header_length[batch]
            )
            out[np.repeat(out_start, header_length[batch]) + head_within] = head
            batch_lengths = lengths[batch]
            within = np.arange(int(batch_lengths.sum())) - np.repeat(
                np.concatenate([[0], np.cumsum(batch_lengths)[:-1]]), batch_lengths
            )
            target = (
                np.repeat(out_start + header_length[batch], batch_lengths)
                + within
                + within // _FASTA_LINE_WIDTH
            )
            source = np.repeat(offsets[batch], batch_lengths) + within
            out[target] = _ASCII_BASES[sequence[source]]
            handle.write(out.tobytes())
            first = last


def _genome_infos(
    genome_ids: list[str],
    parents: np.ndarray,
    relations: list[str],
    sequences: list[np.ndarray],
    abundance: np.ndarray,
    contigs: _Contigs,
    n_genomes: int,
) -> list[GenomeInfo]:
    """Summaries of each genome for the genome table and the result."""
    n_contigs = np.bincount(contigs.genome, minlength=n_genomes)
    contig_bp = np.bincount(contigs.genome, weights=contigs.length, minlength=n_genomes)
    infos = []
    for g, genome_id in enumerate(genome_ids):
        counts = np.bincount(sequences[g], minlength=4)
        parent = int(parents[g])
        infos.append(
            GenomeInfo(
                genome_id=genome_id,
                parent=None if parent < 0 else genome_ids[parent],
                relation=relations[g],  # type: ignore[arg-type]
                length_bp=len(sequences[g]),
                gc=float((counts[1] + counts[2]) / max(len(sequences[g]), 1)),
                abundance=tuple(float(a) for a in abundance[g]),
                n_contigs=int(n_contigs[g]),
                contig_bp=int(contig_bp[g]),
            )
        )
    return infos


def _write_genome_table(path: Path, genomes: Sequence[GenomeInfo], samples: Sequence[str]) -> None:
    """genomes.tsv: one row per genome; abundances are relative (each sample's column sums to 1)."""
    columns = ["genome", "parent", "relation", "length_bp", "gc", "n_contigs", "contig_bp"]
    columns += [f"abundance_{s}" for s in samples]
    rows = ["\t".join(columns)]
    for g in genomes:
        values = [g.genome_id, g.parent or "-", g.relation, str(g.length_bp), f"{g.gc:.4f}"]
        values += [str(g.n_contigs), str(g.contig_bp)] + [f"{a:.6g}" for a in g.abundance]
        rows.append("\t".join(values))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(rows) + "\n")


def _write_contig_table(
    path: Path,
    contigs: _Contigs,
    genome_ids: Sequence[str],
    samples: Sequence[str],
    reads_per_contig: Sequence[np.ndarray],
) -> None:
    """contigs.tsv: where each contig lies on its genome (0-based, end exclusive) and its reads."""
    order = contigs.fasta_order
    columns = ["contig", "genome", "start", "end", "strand", "length_bp"]
    columns += [f"reads_{s}" for s in samples]
    table = [
        contigs.names,
        [genome_ids[g] for g in contigs.genome[order]],
        contigs.start[order].tolist(),
        (contigs.start + contigs.length)[order].tolist(),
        np.where(contigs.reverse[order], "-", "+").tolist(),
        contigs.length[order].tolist(),
    ] + [counts[order].tolist() for counts in reads_per_contig]
    rows = ["\t".join(columns)] + ["\t".join(map(str, row)) for row in zip(*table, strict=True)]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(rows) + "\n")


def _write_samplesheet(
    path: Path, samples: Sequence[str], bams: Sequence[Path], contigs_fasta: Path
) -> None:
    """samplesheet.csv with paths relative to the samplesheet's own folder."""
    base = path.parent.resolve()
    contigs = os.path.relpath(contigs_fasta.resolve(), base)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["sample", "bam", "group", "contigs"])
        for sample, bam in zip(samples, bams, strict=True):
            writer.writerow([sample, os.path.relpath(bam.resolve(), base), "sim", contigs])
