"""Seeded long-read metagenomes: nanopore/PacBio CLR-like reads with indel-dominated errors.

The genomes are those of :mod:`vaebin.simulate` (per-genome Markov models, related models and
strains) or real genomes read from FASTA files; abundances are log-normal per genome and sample.
Every output is a pure function of :class:`LongReadConfig` (seed included): gzip headers carry no
timestamp, and genomes, abundances and each sample's reads have independent random streams.

Layout written by :func:`simulate_long_reads` into ``outdir``::

    sample<N>.fq.gz         reads @S<N>R<index>, BGZF (gzip); sample<N>.fa.gz with ``fasta=True``
    truth.binning           CAMI binning file (read -> genome, with _LENGTH)
    reads.tsv               where each read comes from and the errors it was given
    genomes.tsv             genome, parent, relation, length, GC; abundance, reads, bases per sample
    genomes/<genome>.fna.gz the genome sequences (``write_genomes=True``)
    samplesheet.csv         sample,reads with absolute paths; written last: it marks completion
"""

from __future__ import annotations

import csv
import gzip
import itertools
import math
import os
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from vaebin.errors import FormatError, InputFileError, ParameterError
from vaebin.io import atomic_path
from vaebin.io.cami import write_cami_binning
from vaebin.simulate import (
    SimulationConfig,
    _BgzfWriter,
    _simulate_abundance,
    _simulate_genomes,
    _write_fasta_gz,
)

__all__ = [
    "LongReadConfig",
    "LongReadGenome",
    "LongReadResult",
    "read_n50",
    "simulate_long_reads",
]

# Genome bases are coded 0..3 = A, C, G, T (as in vaebin.simulate), so b's complement is 3 - b.
_ASCII_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_UNKNOWN_BASE = 255
_BASE_CODES = np.full(256, _UNKNOWN_BASE, dtype=np.uint8)
for _code, _letters in enumerate((b"Aa", b"Cc", b"Gg", b"Tt")):
    _BASE_CODES[np.frombuffer(_letters, dtype=np.uint8)] = _code
_FASTA_SUFFIXES = (".fna", ".fa", ".fasta", ".fas", ".ffn", ".fsa", ".seq")
_MAX_PHRED = 40
# Reads are made and written in batches of about this many source bases: big enough for numpy to
# run at full speed, small enough that a batch's FASTQ text (2 bytes a base) stays near 16 MB.
_BATCH_BASES = 1 << 23


@dataclass(frozen=True)
class LongReadConfig:
    """Every knob of the long-read simulator; presets are ``toy``/``small``/``benchmark``."""

    seed: int = 0
    n_genomes: int = 4
    n_samples: int = 2
    # Simulated genomes (see SimulationConfig): lengths, related Markov models, strains.
    genome_length_bp: tuple[int, int] = (150_000, 250_000)
    related_fraction: float = 0.25
    strain_fraction: float = 0.0
    # log(abundance[g, s]) = genome_mean[g] + noise[g, s], both normal with these sigmas.
    abundance_sigma: float = 1.0
    sample_sigma: float = 0.8
    # Real genomes instead of simulated ones: one genome per FASTA file (plain or gzip), its
    # records sampled in proportion to their length; n_genomes becomes the number of files.
    genome_fastas: tuple[Path, ...] | None = None
    # Genome bases read per sample; the reads as written differ by their insertions - deletions.
    bases_per_sample: int = 4_000_000
    # Log-normal read lengths. Weighted by length, a log-normal(mu, sigma) is log-normal(mu +
    # sigma^2, sigma), so the read N50 is median * exp(sigma^2) = 6 kb * e^0.49 = 9.8 kb (the mean
    # read is median * exp(sigma^2 / 2) = 7.7 kb); draws outside [min, max] are redrawn.
    read_length_median_bp: int = 6_000
    read_length_sigma: float = 0.7
    min_read_length_bp: int = 1_000
    max_read_length_bp: int = 100_000
    # Each read's error rate ~ Beta(mean error_rate, concentration): at 8 % the sd is 2 points and
    # 95 % of reads lie between 4.6 % and 12 %, like basecalled nanopore or PacBio CLR reads.
    error_rate: float = 0.08
    error_rate_concentration: float = 180.0
    # How errors split into kinds; indels dominate in nanopore and CLR reads.
    substitution_fraction: float = 0.3
    insertion_fraction: float = 0.3
    deletion_fraction: float = 0.4
    reverse_strand_fraction: float = 0.5
    fasta: bool = False
    write_genomes: bool = True
    compression_level: int = 1
    # Threads for compression; 0 means one per CPU (capped at 8). The output is the same.
    threads: int = 0
    cami_sample_id: str = "vaebin_sim"

    def __post_init__(self) -> None:
        """Normalise ``genome_fastas`` and reject settings that cannot produce a community."""
        if self.genome_fastas:
            # Frozen dataclass: these two normalisations must go through object.__setattr__.
            object.__setattr__(self, "genome_fastas", tuple(Path(p) for p in self.genome_fastas))
            object.__setattr__(self, "n_genomes", len(self.genome_fastas))
        else:
            object.__setattr__(self, "genome_fastas", None)
        problems = []
        low, high = self.genome_length_bp
        if self.n_genomes < 1 or self.n_samples < 1:
            problems.append("n_genomes and n_samples must be at least 1")
        if not 0 < low <= high:
            problems.append("genome_length_bp must be a range 0 < min <= max")
        if self.genome_fastas is None and low < self.min_read_length_bp:
            problems.append("genome_length_bp minimum is below min_read_length_bp")
        if not 0.0 <= self.related_fraction + self.strain_fraction < 1.0:
            problems.append("related_fraction + strain_fraction must be in [0, 1)")
        if self.abundance_sigma < 0 or self.sample_sigma < 0:
            problems.append("abundance_sigma and sample_sigma must be non-negative")
        if self.genome_fastas is not None:
            ids = [_genome_id(p) for p in self.genome_fastas]
            if len(set(ids)) != len(ids):
                problems.append("genome FASTA files must have different names (the genome ids)")
        if self.bases_per_sample < 1:
            problems.append("bases_per_sample must be positive")
        if not 50 <= self.min_read_length_bp <= self.read_length_median_bp:
            problems.append("min_read_length_bp must be at least 50 and at most the median")
        if self.max_read_length_bp < self.read_length_median_bp:
            problems.append("max_read_length_bp must be at least read_length_median_bp")
        if not 0.0 <= self.read_length_sigma <= 3.0:
            problems.append("read_length_sigma must be in [0, 3]")
        if not 0.0 <= self.error_rate <= 0.3:
            problems.append(f"error_rate must be in [0, 0.3], not {self.error_rate}")
        if self.error_rate_concentration <= 0:
            problems.append("error_rate_concentration must be positive")
        kinds = (self.substitution_fraction, self.insertion_fraction, self.deletion_fraction)
        if min(kinds) < 0 or not math.isclose(sum(kinds), 1.0, abs_tol=1e-9):
            problems.append("substitution, insertion and deletion fractions must sum to 1")
        if not 0.0 <= self.reverse_strand_fraction <= 1.0:
            problems.append("reverse_strand_fraction must be in [0, 1]")
        if not 0 <= self.compression_level <= 9:
            problems.append("compression_level must be between 0 and 9")
        if self.threads < 0:
            problems.append("threads must be non-negative")
        if problems:
            raise ParameterError("invalid long-read simulation settings: " + "; ".join(problems))

    @classmethod
    def toy(cls, **overrides: object) -> LongReadConfig:
        """4 genomes of 150-250 kbp, 2 samples, 4 Mbp of reads each: a second or two; for tests."""
        return cls(**overrides)  # type: ignore[arg-type]  # the defaults are the toy community

    @classmethod
    def small(cls, **overrides: object) -> LongReadConfig:
        """8 genomes of 0.5-1 Mbp, 3 samples, 40 Mbp of reads each; for the demo."""
        settings: dict[str, object] = {
            "n_genomes": 8,
            "n_samples": 3,
            "genome_length_bp": (500_000, 1_000_000),
            "bases_per_sample": 40_000_000,
        }
        return cls(**{**settings, **overrides})  # type: ignore[arg-type]

    @classmethod
    def benchmark(cls, **overrides: object) -> LongReadConfig:
        """15 genomes of 1-5 Mbp (related models and strains), 3 samples, 250 Mbp of reads each."""
        settings: dict[str, object] = {
            "n_genomes": 15,
            "n_samples": 3,
            "genome_length_bp": (1_000_000, 5_000_000),
            "related_fraction": 0.2,
            "strain_fraction": 0.13,
            "bases_per_sample": 250_000_000,
        }
        return cls(**{**settings, **overrides})  # type: ignore[arg-type]

    @classmethod
    def preset(cls, name: str, **overrides: object) -> LongReadConfig:
        """The preset called ``name`` (toy, small or benchmark) with ``overrides`` applied."""
        constructors = {"toy": cls.toy, "small": cls.small, "benchmark": cls.benchmark}
        if name not in constructors:
            raise ParameterError(
                f"unknown preset {name!r}; choose one of {', '.join(constructors)}"
            )
        return constructors[name](**overrides)

    def with_overrides(self, **overrides: object) -> LongReadConfig:
        """A copy with the given fields replaced, ignoring those passed as None."""
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise ParameterError(f"unknown LongReadConfig fields: {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def genome_config(self) -> SimulationConfig:
        """The SimulationConfig whose genome and abundance model these settings describe."""
        low = self.genome_length_bp[0]
        # Contig and short-read settings are unused here; they only have to pass its checks.
        return SimulationConfig(
            seed=self.seed,
            n_genomes=self.n_genomes,
            n_samples=self.n_samples,
            genome_length_bp=self.genome_length_bp,
            related_fraction=self.related_fraction,
            strain_fraction=self.strain_fraction,
            abundance_sigma=self.abundance_sigma,
            sample_sigma=self.sample_sigma,
            read_length=min(150, low),
            min_contig_length_bp=min(1_000, low),
        )


@dataclass(frozen=True)
class LongReadGenome:
    """One genome: id, ancestry, size, GC, and per sample its abundance, reads and read bases."""

    genome_id: str
    parent: str | None
    relation: str  # independent, related_model, strain, or input (read from a FASTA file)
    length_bp: int
    gc: float
    abundance: tuple[float, ...]
    reads: tuple[int, ...]
    read_bases: tuple[int, ...]


@dataclass(frozen=True)
class LongReadResult:
    """Paths of everything :func:`simulate_long_reads` wrote, plus the genomes and read counts."""

    outdir: Path
    read_files: tuple[Path, ...]
    truth_binning: Path
    read_table: Path
    genome_table: Path
    samplesheet: Path
    genome_files: tuple[Path, ...]
    sample_names: tuple[str, ...]
    genomes: tuple[LongReadGenome, ...]
    reads_per_sample: tuple[int, ...]
    bases_per_sample: tuple[int, ...]
    read_n50_bp: int
    error_rate: float  # errors applied per genome base read, over all reads
    seconds: float


@dataclass
class _Genomes:
    """Genome sequences as records (one per simulated genome; a FASTA file's records)."""

    ids: list[str]
    parents: list[str | None]
    relations: list[str]
    record_genome: np.ndarray  # genome index of each record
    record_names: list[str]
    record_length: np.ndarray
    record_offset: np.ndarray  # start of each record in ``sequence``
    sequence: np.ndarray  # codes 0..3, records concatenated

    def strands(self, tail_bp: int) -> _Strands:
        """Both strands of every record in ASCII, each followed by its own first ``tail_bp``
        bases, so that every read, wrapping around a circular record or not, is one slice."""
        n_records = len(self.record_names)
        tails = np.minimum(self.record_length, tail_bp)
        padded_length = np.tile(self.record_length + tails, 2)
        offset = (np.cumsum(padded_length) - padded_length).astype(np.int64)
        bases = np.empty(int(padded_length.sum()), dtype=np.uint8)
        for record in range(n_records):
            first, size, tail = (
                int(self.record_offset[record]),
                int(self.record_length[record]),
                int(tails[record]),
            )
            forward = self.sequence[first : first + size]
            # The reverse strand read 5' to 3' is the complement (3 - code) of the record reversed.
            for strand, at in (
                (forward, offset[record]),
                (3 - forward[::-1], offset[n_records + record]),
            ):
                ascii_strand = _ASCII_BASES[strand]
                bases[at : at + size] = ascii_strand
                bases[at + size : at + size + tail] = ascii_strand[:tail]
        return _Strands(bases, offset[:n_records], offset[n_records:])


@dataclass
class _Strands:
    """Every record's forward and reverse strand as ASCII bases, circularly padded."""

    bases: np.ndarray
    forward_offset: np.ndarray
    reverse_offset: np.ndarray


@dataclass
class _ReadPlan:
    """Where one sample's reads come from, drawn before any sequence is made."""

    record: np.ndarray
    start: np.ndarray
    source_length: np.ndarray
    reverse: np.ndarray
    error_rate: np.ndarray


@dataclass
class _ReadStats:
    """What was written for one sample's reads, in read order."""

    names: list[str]
    length: np.ndarray
    substitutions: np.ndarray
    insertions: np.ndarray
    deletions: np.ndarray


def simulate_long_reads(outdir: Path, config: LongReadConfig | None = None) -> LongReadResult:
    """Simulate a community and write long reads, truth, tables and a samplesheet to ``outdir``."""
    began = time.perf_counter()
    config = config or LongReadConfig()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    genome_seed, abundance_seed, reads_seed = np.random.SeedSequence(config.seed).spawn(3)
    genome_rng = np.random.default_rng(genome_seed)
    if config.genome_fastas is None:
        genomes = _simulated_genomes(config, genome_rng)
    else:
        genomes = _genomes_from_fastas(config.genome_fastas, genome_rng)
    abundance = _simulate_abundance(config.genome_config(), np.random.default_rng(abundance_seed))
    usable = genomes.record_length >= config.min_read_length_bp
    unreadable = np.setdiff1d(np.arange(len(genomes.ids)), genomes.record_genome[usable])
    if unreadable.size:
        raise ParameterError(
            f"genome {genomes.ids[unreadable[0]]} has no record of at least "
            f"min_read_length_bp ({config.min_read_length_bp} bp)"
        )

    genome_files: list[Path] = []
    if config.write_genomes:
        for g, genome_id in enumerate(genomes.ids):
            members = np.flatnonzero(genomes.record_genome == g)
            path = outdir / "genomes" / f"{genome_id}.fna.gz"
            with atomic_path(path) as tmp:
                _write_fasta_gz(
                    tmp,
                    [genomes.record_names[r] for r in members],
                    genomes.sequence,
                    genomes.record_offset[members],
                    genomes.record_length[members],
                    config.compression_level,
                )
            genome_files.append(path)

    strands = genomes.strands(config.max_read_length_bp)
    threads = config.threads or min(os.cpu_count() or 1, 8)
    sample_names = [f"sample{s + 1}" for s in range(config.n_samples)]
    suffix = "fa.gz" if config.fasta else "fq.gz"
    read_files, plans, stats = [], [], []
    for s, sample_seed in enumerate(reads_seed.spawn(config.n_samples)):
        rng = np.random.default_rng(sample_seed)
        plan = _plan_reads(config, genomes, abundance[:, s], rng)
        path = outdir / f"{sample_names[s]}.{suffix}"
        with atomic_path(path) as tmp:
            sample_stats = _write_reads(
                tmp, f"S{s + 1}R", plan, strands, genomes.record_length, config, rng, threads
            )
        read_files.append(path)
        plans.append(plan)
        stats.append(sample_stats)

    read_genome = [genomes.record_genome[plan.record] for plan in plans]
    truth = outdir / "truth.binning"
    write_cami_binning(
        truth,
        [name for sample in stats for name in sample.names],
        [genomes.ids[g] for g in np.concatenate(read_genome)],
        np.concatenate([sample.length for sample in stats]),
        sample_id=config.cami_sample_id,
    )
    read_table = outdir / "reads.tsv"
    _write_read_table(read_table, sample_names, genomes, plans, stats)
    genome_infos = _genome_infos(genomes, abundance, read_genome, stats)
    genome_table = outdir / "genomes.tsv"
    _write_genome_table(genome_table, genome_infos, sample_names)
    samplesheet = outdir / "samplesheet.csv"
    with atomic_path(samplesheet) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["sample", "reads"])
        for sample, path in zip(sample_names, read_files, strict=True):
            writer.writerow([sample, str(path.resolve())])

    all_lengths = np.concatenate([sample.length for sample in stats])
    errors = sum(int(x.substitutions.sum() + x.insertions.sum() + x.deletions.sum()) for x in stats)
    source_bp = sum(int(plan.source_length.sum()) for plan in plans)
    return LongReadResult(
        outdir=outdir,
        read_files=tuple(read_files),
        truth_binning=truth,
        read_table=read_table,
        genome_table=genome_table,
        samplesheet=samplesheet,
        genome_files=tuple(genome_files),
        sample_names=tuple(sample_names),
        genomes=tuple(genome_infos),
        reads_per_sample=tuple(len(sample.names) for sample in stats),
        bases_per_sample=tuple(int(sample.length.sum()) for sample in stats),
        read_n50_bp=read_n50(all_lengths),
        error_rate=errors / max(source_bp, 1),
        seconds=time.perf_counter() - began,
    )


def read_n50(lengths: Sequence[int] | np.ndarray) -> int:
    """The length L such that reads of at least L bp hold half of all bases (0 for no reads)."""
    ordered = np.sort(np.asarray(lengths, dtype=np.int64))[::-1]
    if ordered.size == 0:
        return 0
    cumulative = np.cumsum(ordered)
    return int(ordered[np.searchsorted(cumulative, cumulative[-1] / 2)])


# --------------------------------------------------------------------------------------------
# genomes


def _simulated_genomes(config: LongReadConfig, rng: np.random.Generator) -> _Genomes:
    """Genomes from the contig simulator's Markov models, one record each."""
    ids = [f"genome{i + 1:02d}" for i in range(config.n_genomes)]
    parents, relations, sequences = _simulate_genomes(config.genome_config(), rng)
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return _Genomes(
        ids=ids,
        parents=[None if p < 0 else ids[p] for p in parents.tolist()],
        relations=relations,
        record_genome=np.arange(config.n_genomes),
        record_names=list(ids),
        record_length=lengths,
        record_offset=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        sequence=np.concatenate(sequences),
    )


def _genome_id(path: Path) -> str:
    """A genome's id: its FASTA file name without the .gz and FASTA suffixes."""
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    for suffix in _FASTA_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _genomes_from_fastas(paths: Sequence[Path], rng: np.random.Generator) -> _Genomes:
    """Read one genome per FASTA file; IUPAC codes and N become random bases."""
    record_genome, record_names, sequences = [], [], []
    for g, path in enumerate(paths):
        names, records = _read_fasta_codes(path, rng)
        record_genome += [g] * len(names)
        record_names += names
        sequences += records
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return _Genomes(
        ids=[_genome_id(p) for p in paths],
        parents=[None] * len(paths),
        relations=["input"] * len(paths),
        record_genome=np.array(record_genome, dtype=np.int64),
        record_names=record_names,
        record_length=lengths,
        record_offset=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        sequence=np.concatenate(sequences),
    )


def _read_fasta_codes(path: Path, rng: np.random.Generator) -> tuple[list[str], list[np.ndarray]]:
    """Names and base codes of the records of a plain or gzip FASTA file."""
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip or bgzip, whatever the name says
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        reason = getattr(error, "strerror", None) or error
        raise InputFileError(f"{path}: cannot read genome FASTA: {reason}") from None
    text = raw.lstrip()
    if not text.startswith(b">"):
        raise FormatError(f"{path}: not a FASTA file: it does not start with '>'")
    names, sequences = [], []
    for number, record in enumerate(text[1:].split(b"\n>"), start=1):
        header, _, body = record.partition(b"\n")
        words = header.split()
        if not words:
            raise FormatError(f"{path}: record {number}: no name after '>'")
        name = words[0].decode("utf-8", errors="replace")
        codes = _BASE_CODES[np.frombuffer(body.translate(None, b" \t\r\n"), dtype=np.uint8)]
        if codes.size == 0:
            raise FormatError(f"{path}: record {number} ({name}): no sequence")
        unknown = np.flatnonzero(codes == _UNKNOWN_BASE)
        codes[unknown] = rng.integers(0, 4, unknown.size, dtype=np.uint8)
        names.append(name)
        sequences.append(codes)
    return names, sequences


# --------------------------------------------------------------------------------------------
# reads


def _plan_reads(
    config: LongReadConfig,
    genomes: _Genomes,
    genome_abundance: np.ndarray,
    rng: np.random.Generator,
) -> _ReadPlan:
    """Draw each read's length, record, start, strand and error rate until the sample is full."""
    median, sigma = config.read_length_median_bp, config.read_length_sigma
    low, high = config.min_read_length_bp, config.max_read_length_bp
    mean_length = median * math.exp(sigma**2 / 2)
    lengths = np.empty(0, dtype=np.int64)
    while lengths.sum() < config.bases_per_sample:
        missing = config.bases_per_sample - lengths.sum()
        count = int(1.1 * missing / mean_length) + 16
        draws = np.rint(rng.lognormal(math.log(median), sigma, count))
        kept = draws[(draws >= low) & (draws <= high)].astype(np.int64)
        lengths = np.concatenate([lengths, kept])
    n_reads = int(np.searchsorted(np.cumsum(lengths), config.bases_per_sample)) + 1
    lengths = lengths[:n_reads]

    # A read's genome is drawn in proportion to abundance x length: each genome copy in the sample
    # sheds reads along its whole length. Records too short for a read shed none.
    usable = genomes.record_length >= low
    weight = genome_abundance[genomes.record_genome] * genomes.record_length * usable
    record = rng.choice(len(weight), size=n_reads, p=weight / weight.sum())
    record_length = genomes.record_length[record]
    source_length = np.minimum(lengths, record_length)
    start = (rng.random(n_reads) * record_length).astype(np.int64)
    reverse = rng.random(n_reads) < config.reverse_strand_fraction
    if config.error_rate > 0:
        concentration = config.error_rate_concentration
        error_rate = rng.beta(
            config.error_rate * concentration, (1 - config.error_rate) * concentration, n_reads
        )
    else:
        error_rate = np.zeros(n_reads)
    return _ReadPlan(record, start, source_length, reverse, error_rate)


def _write_reads(
    path: Path,
    name_prefix: str,
    plan: _ReadPlan,
    strands: _Strands,
    record_length: np.ndarray,
    config: LongReadConfig,
    rng: np.random.Generator,
    threads: int,
) -> _ReadStats:
    """Make the planned reads batch by batch and write them BGZF-compressed (a gzip file)."""
    n_reads = plan.record.size
    names = [f"{name_prefix}{i}" for i in range(1, n_reads + 1)]
    quality = [bytes((q,)) for q in _phred_characters(plan.error_rate).tolist()]
    source_length = plan.source_length
    size = record_length[plan.record]
    # Where each read starts in `strands`: on the reverse strand the genome slice [start,
    # start + length) becomes [size - start - length, size - start), taken modulo the size.
    anchor = np.where(
        plan.reverse,
        strands.reverse_offset[plan.record] + (size - plan.start - source_length) % size,
        strands.forward_offset[plan.record] + plan.start,
    )
    cumulative = np.cumsum(source_length)
    cuts = np.searchsorted(cumulative, np.arange(_BATCH_BASES, cumulative[-1], _BATCH_BASES)) + 1
    bounds = np.unique(np.concatenate([[0], cuts, [n_reads]]).clip(0, n_reads)).tolist()
    lengths, substitutions, insertions, deletions = [], [], [], []
    # Blocks are compressed by a thread pool while the next batch is being made: zlib releases
    # the GIL, and compression is the larger half of the work.
    with open(path, "wb") as raw, ThreadPoolExecutor(1) as feeder:
        writer = _BgzfWriter(raw, config.compression_level, threads)
        pending: Future[None] | None = None
        for first, last in itertools.pairwise(bounds):
            batch_length = source_length[first:last]
            # Slicing read by read copies each read with one memcpy; an index per base would
            # cost about 40 times more.
            source = np.concatenate(
                [
                    strands.bases[at : at + length]
                    for at, length in zip(
                        anchor[first:last].tolist(), batch_length.tolist(), strict=True
                    )
                ]
            )
            read, (substituted, inserted, deleted) = _add_errors(
                source, batch_length, plan.error_rate[first:last], config, rng
            )
            read_length = batch_length + inserted - deleted
            text = _format_records(
                names[first:last], read, read_length, quality[first:last], config.fasta
            )
            if pending is not None:
                pending.result()
            pending = feeder.submit(writer.write, text)
            lengths.append(read_length)
            substitutions.append(substituted)
            insertions.append(inserted)
            deletions.append(deleted)
        if pending is not None:
            pending.result()
        writer.close()
    return _ReadStats(
        names=names,
        length=np.concatenate(lengths),
        substitutions=np.concatenate(substitutions),
        insertions=np.concatenate(insertions),
        deletions=np.concatenate(deletions),
    )


def _phred_characters(error_rate: np.ndarray) -> np.ndarray:
    """One FASTQ quality character per read: the Phred score of its error rate, capped at 40."""
    with np.errstate(divide="ignore"):
        phred = np.rint(-10 * np.log10(error_rate))
    return (33 + np.clip(phred, 0, _MAX_PHRED)).astype(np.uint8)


def _add_errors(
    source: np.ndarray,
    length: np.ndarray,
    error_rate: np.ndarray,
    config: LongReadConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Make each base of a read an error with the read's rate: a substitution, an insertion
    after it or a deletion. ``source`` holds the reads' ASCII bases end to end; returns the
    reads with errors and the substitutions, insertions and deletions per read."""
    n_reads = length.size
    # Poisson(-L log(1 - r)) hits at uniform positions of a read of L bases hit each base a
    # Poisson(-log(1 - r)) number of times, independently: at least once with probability exactly
    # r. Drawing the ~r * L hits is much cheaper than drawing a random number for every base.
    draws = rng.poisson(-length * np.log1p(-error_rate))
    error_read = np.repeat(np.arange(n_reads), draws)
    read_start = np.cumsum(length) - length
    offset = (rng.random(error_read.size) * length[error_read]).astype(np.int64)
    # Each read's hits stay inside its own range, so sorting them leaves `error_read` in step.
    position = np.sort(read_start[error_read] + offset)
    first_hit = np.ones(position.size, dtype=bool)
    first_hit[1:] = position[1:] != position[:-1]
    position, error_read = position[first_hit], error_read[first_hit]
    uniform = rng.random(position.size)
    kind = (uniform >= config.substitution_fraction).view(np.uint8)  # 0 sub, 1 ins, 2 del
    kind += uniform >= config.substitution_fraction + config.insertion_fraction

    substituted = position[kind == 0]
    shift = rng.integers(1, 4, substituted.size, dtype=np.uint8)
    source[substituted] = _ASCII_BASES[(_BASE_CODES[source[substituted]] + shift) % 4]
    is_deletion, is_insertion = kind == 2, kind == 1
    kept = np.delete(source, position[is_deletion])
    # In `kept`, source base p sits at p minus the deletions before it; insert right after it.
    deletions_before = np.cumsum(is_deletion)[is_insertion]
    insert_at = position[is_insertion] + 1 - deletions_before
    read = np.insert(kept, insert_at, _ASCII_BASES[rng.integers(0, 4, insert_at.size)])
    per_kind = np.bincount(error_read * 3 + kind, minlength=3 * n_reads).reshape(n_reads, 3)
    counts = (per_kind[:, 0], per_kind[:, 1], per_kind[:, 2])
    return read, counts  # type: ignore[return-value]


def _format_records(
    names: Sequence[str],
    read: np.ndarray,
    length: np.ndarray,
    quality: Sequence[bytes],
    fasta: bool,
) -> bytes:
    """FASTQ (or one-line FASTA) text of the reads held end to end in ``read`` (ASCII)."""
    view = memoryview(read)
    ends = np.cumsum(length).tolist()
    starts = [0, *ends[:-1]]
    pieces: list[bytes | memoryview] = []
    # One join of slices of the batch: each byte is copied once, at memcpy speed.
    if fasta:
        for name, start, end in zip(names, starts, ends, strict=True):
            pieces += (f">{name}\n".encode(), view[start:end], b"\n")
    else:
        for name, start, end, score in zip(names, starts, ends, quality, strict=True):
            quality_line = score * (end - start)
            pieces += (f"@{name}\n".encode(), view[start:end], b"\n+\n", quality_line, b"\n")
    return b"".join(pieces)


# --------------------------------------------------------------------------------------------
# tables


def _genome_infos(
    genomes: _Genomes,
    abundance: np.ndarray,
    read_genome: Sequence[np.ndarray],
    stats: Sequence[_ReadStats],
) -> list[LongReadGenome]:
    """Summaries of each genome for the genome table and the result."""
    n = len(genomes.ids)
    reads = [np.bincount(g, minlength=n) for g in read_genome]
    bases = [
        np.bincount(g, weights=s.length, minlength=n).astype(np.int64)
        for g, s in zip(read_genome, stats, strict=True)
    ]
    length = np.bincount(genomes.record_genome, weights=genomes.record_length, minlength=n)
    base_counts = np.zeros((n, 4), dtype=np.int64)
    for record, g in enumerate(genomes.record_genome.tolist()):
        first, size = genomes.record_offset[record], genomes.record_length[record]
        base_counts[g] += np.bincount(genomes.sequence[first : first + size], minlength=4)
    return [
        LongReadGenome(
            genome_id=genomes.ids[g],
            parent=genomes.parents[g],
            relation=genomes.relations[g],
            length_bp=int(length[g]),
            gc=float(base_counts[g, 1:3].sum() / max(length[g], 1)),
            abundance=tuple(float(a) for a in abundance[g]),
            reads=tuple(int(r[g]) for r in reads),
            read_bases=tuple(int(b[g]) for b in bases),
        )
        for g in range(n)
    ]


def _write_genome_table(
    path: Path, genomes: Sequence[LongReadGenome], samples: Sequence[str]
) -> None:
    """genomes.tsv: abundances are relative (each sample's column sums to 1); bases as written."""
    columns = ["genome", "parent", "relation", "length_bp", "gc"]
    for sample in samples:
        columns += [f"abundance_{sample}", f"reads_{sample}", f"bases_{sample}"]
    rows = ["\t".join(columns)]
    for g in genomes:
        values = [g.genome_id, g.parent or "-", g.relation, str(g.length_bp), f"{g.gc:.4f}"]
        for abundance, reads, bases in zip(g.abundance, g.reads, g.read_bases, strict=True):
            values += [f"{abundance:.6g}", str(reads), str(bases)]
        rows.append("\t".join(values))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(rows) + "\n")


def _write_read_table(
    path: Path,
    samples: Sequence[str],
    genomes: _Genomes,
    plans: Sequence[_ReadPlan],
    stats: Sequence[_ReadStats],
) -> None:
    """reads.tsv: each read's record, 0-based start and strand on it, and its errors."""
    columns = ["read", "sample", "genome", "record", "start", "strand", "source_length"]
    columns += ["length", "errors", "substitutions", "insertions", "deletions"]
    genome_ids = np.array(genomes.ids, dtype=object)
    record_names = np.array(genomes.record_names, dtype=object)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\t".join(columns) + "\n")
        for sample, plan, read in zip(samples, plans, stats, strict=True):
            errors = read.substitutions + read.insertions + read.deletions
            table = [
                read.names,
                [sample] * len(read.names),
                genome_ids[genomes.record_genome[plan.record]].tolist(),
                record_names[plan.record].tolist(),
                plan.start.tolist(),
                np.where(plan.reverse, "-", "+").tolist(),
                plan.source_length.tolist(),
                read.length.tolist(),
                errors.tolist(),
                read.substitutions.tolist(),
                read.insertions.tolist(),
                read.deletions.tolist(),
            ]
            handle.writelines("\t".join(map(str, row)) + "\n" for row in zip(*table, strict=True))
