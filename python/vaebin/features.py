"""Composition (and coverage) features computed by the Rust core, returned as numpy arrays."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from vaebin import _core


@dataclass(frozen=True)
class Composition:
    """Per-record canonical k-mer composition of one FASTA/FASTQ file."""

    matrix: np.ndarray
    """float32 frequencies (rows sum to 1) or uint32 counts, one row per kept record."""
    names: np.ndarray
    """Record names (numpy unicode array), in row order."""
    lengths: np.ndarray
    """int64 sequence lengths in bp, all characters counted (N included)."""
    kmer_totals: np.ndarray
    """int64 number of valid k-mers per record; 0 flags a record with no countable k-mer."""
    k: int
    records: int
    records_kept: int
    records_too_short: int
    bases: int
    bases_kept: int
    compressed: bool

    @property
    def no_kmer_rows(self) -> np.ndarray:
        """Boolean mask of rows without any valid k-mer (their frequencies are all zero)."""
        return self.kmer_totals == 0


def composition(
    path: str | os.PathLike[str],
    k: int = 4,
    min_length: int = 0,
    threads: int | None = None,
    normalize: bool = True,
) -> Composition:
    """Canonical k-mer composition of every record of a FASTA/FASTQ file (plain, gzip or bgzip).

    Records shorter than `min_length` are read but left out. With `normalize=False` the matrix holds
    raw uint32 counts instead of float32 frequencies.
    """
    result = _core.composition_arrays(
        os.fspath(path), k=k, min_length=min_length, threads=threads, normalize=normalize
    )
    width = result["name_width"]
    names = np.frombuffer(result["names"], dtype=f"S{width}").astype(str)
    return Composition(
        matrix=result["matrix"],
        names=names,
        lengths=result["lengths"],
        kmer_totals=result["kmer_totals"],
        k=k,
        records=result["records"],
        records_kept=result["records_kept"],
        records_too_short=result["records_too_short"],
        bases=result["bases"],
        bases_kept=result["bases_kept"],
        compressed=result["compressed"],
    )


def names_and_lengths(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Record names (numpy unicode array) and int64 lengths in bp of a FASTA/FASTQ file.

    The file is read and checked by the same rules as `composition`, without counting k-mers.
    """
    result = _core.sequence_names_and_lengths(os.fspath(path))
    width = result["name_width"]
    names = np.frombuffer(result["names"], dtype=f"S{width}").astype(str)
    return names, result["lengths"]


def kmer_labels(k: int = 4) -> list[str]:
    """The canonical k-mers in column order: lexicographic by the smaller of k-mer and revcomp."""
    return list(_core.kmer_labels(k))


def _reverse_complement(kmer: str) -> str:
    return kmer[::-1].translate(str.maketrans("ACGT", "TGCA"))


@cache
def tetranucleotide_projection_kernel() -> np.ndarray:
    """Orthonormal basis (136 x 103) of the tetranucleotide subspace VAMB projects onto.

    Tetranucleotide frequencies obey linear constraints: they sum to one, a 4-mer and its reverse
    complement are indistinguishable, and every 3-mer occurs (up to the sequence ends) as often as a
    prefix as it does as a suffix. Frequencies minus their uniform mean live in the null space of
    those constraints, which has 103 dimensions; projecting onto it drops only redundant directions.
    """
    all_kmers = ["".join(bases) for bases in itertools.product("ACGT", repeat=4)]
    index = {kmer: i for i, kmer in enumerate(all_kmers)}
    constraints = [np.ones(256)]
    for kmer in all_kmers:
        rc = _reverse_complement(kmer)
        if kmer < rc:
            row = np.zeros(256)
            row[index[kmer]], row[index[rc]] = 1.0, -1.0
            constraints.append(row)
    for prefix in (kmer[:3] for kmer in all_kmers[::4]):
        row = np.zeros(256)
        for base in "ACGT":
            row[index[prefix + base]] += 1.0
            row[index[base + prefix]] -= 1.0
        constraints.append(row)
    _, singular, vt = np.linalg.svd(np.array(constraints))
    rank = int((singular > 1e-10 * singular[0]).sum())
    null_basis = vt[rank:].T  # 256 x 103, orthonormal columns
    # Express the basis on canonical columns: a canonical frequency f spreads over the k-mer and
    # its reverse complement, f/2 each (f on a palindrome).
    labels = kmer_labels(4)
    expand = np.zeros((136, 256))
    for column, kmer in enumerate(labels):
        rc = _reverse_complement(kmer)
        share = 1.0 if kmer == rc else 0.5
        expand[column, index[kmer]] += share
        expand[column, index[rc]] += share
    return (expand @ null_basis).astype(np.float64)


def project_tetranucleotides(frequencies: np.ndarray) -> np.ndarray:
    """VAMB-style 103-dimensional projection of 136-column canonical tetranucleotide frequencies."""
    if frequencies.ndim != 2 or frequencies.shape[1] != 136:
        raise ValueError(
            f"expected a matrix of 136 tetranucleotide columns, got {frequencies.shape}"
        )
    kernel = tetranucleotide_projection_kernel()
    # Subtracting the uniform distribution moves rows onto the sum-zero plane of the constraints.
    centred = frequencies.astype(np.float64) - _uniform_canonical()
    return (centred @ kernel).astype(np.float32)


@cache
def _uniform_canonical() -> np.ndarray:
    """Uniform 4-mer distribution on canonical columns: 2/256 a pair, 1/256 a palindrome."""
    labels = kmer_labels(4)
    return np.array([1 / 256 if km == _reverse_complement(km) else 2 / 256 for km in labels])


DEPTH_MODES = ("metabat", "mean")


@dataclass(frozen=True)
class CoverageOptions:
    """How per-contig depth is computed from BAM files; the defaults are MetaBAT2's."""

    mode: str = "metabat"
    """`metabat`: jgi_summarize_bam_contig_depths semantics; `mean`: plain per-base mean over the
    whole contig (no identity filter, no edge trimming)."""
    min_identity: float = 0.97
    """Reads under this identity (exact matches / (matches + mismatches + indels)) are left out."""
    trim_edges: int = 75
    """At most this many bases (and at most the average read length) left out at each contig end;
    0 keeps the edges."""
    min_mapq: int = 0
    """Reads with a lower mapping quality are left out."""


@dataclass(frozen=True)
class Coverage:
    """Per-contig depth of coverage in each BAM file (sample), contigs in FASTA order."""

    names: np.ndarray
    """Contig names (numpy unicode array)."""
    lengths: np.ndarray
    """int64 contig lengths in bp."""
    depths: np.ndarray
    """float64 contigs x samples mean depth."""
    variances: np.ndarray
    """float64 contigs x samples variance (n - 1) of the per-base depth."""
    sample_names: list[str]
    """One per BAM: its file name, as MetaBAT2 names the columns."""
    edge_trims: np.ndarray
    """Bases left out at each contig end per sample when the total depth is computed."""
    read_counts: list[dict[str, int]]
    """Per sample: records, filtered_flags, unmapped, low_mapq, low_identity, counted,
    average_read_length."""
    options: CoverageOptions

    @property
    def total_average_depth(self) -> np.ndarray:
        """MetaBAT2's `totalAvgDepth` column (float32)."""
        return _core.total_average_depths(
            self.lengths.astype(np.float64),
            np.ascontiguousarray(self.depths, dtype=np.float64),
            [int(trim) for trim in self.edge_trims],
        )


def coverage(
    contigs: str | os.PathLike[str],
    bams: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    threads: int | None = None,
    mode: str = CoverageOptions.mode,
    min_identity: float = CoverageOptions.min_identity,
    trim_edges: int = CoverageOptions.trim_edges,
    min_mapq: int = CoverageOptions.min_mapq,
) -> Coverage:
    """Mean and variance of the depth of every contig in each coordinate-sorted BAM file.

    The BAM references must be exactly the contigs of `contigs` (FASTA, plain/gzip/bgzip), same
    names and lengths, in any order. The numbers equal `jgi_summarize_bam_contig_depths`'s in
    the default `metabat` mode. BGZF blocks are inflated on `threads` threads (default: all).
    """
    options = CoverageOptions(
        mode=mode, min_identity=min_identity, trim_edges=trim_edges, min_mapq=min_mapq
    )
    if isinstance(bams, (str, os.PathLike)):
        bams = [bams]
    bam_paths = [os.fspath(bam) for bam in bams]
    result = _core.coverage_arrays(
        os.fspath(contigs),
        bam_paths,
        mode=options.mode,
        min_identity=options.min_identity,
        trim_edges=options.trim_edges,
        min_mapq=options.min_mapq,
        threads=threads,
    )
    return Coverage(
        names=np.array(result["names"], dtype=str),
        lengths=result["lengths"].astype(np.int64),
        depths=result["means"],
        variances=result["variances"],
        sample_names=[os.path.basename(path) for path in bam_paths],
        edge_trims=result["edge_trims"].astype(np.int64),
        read_counts=list(result["stats"]),
        options=options,
    )
