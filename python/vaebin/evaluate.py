"""Score bins against a known contig -> genome assignment, in base pairs.

For every genome the best bin is the one holding most of its bp; completeness is that overlap
over the genome's bp, purity the overlap over the bin's bp. Contigs absent from the truth are
left out of bin sizes (as AMBER does for unassigned gold-standard sequences) and counted.
The adjusted Rand index is computed over binned bp, each bp being one item.

Multi-split binning (contigs of per-sample assemblies named `S1C12`, bins split per sample) is
scored as VAMB's benchmarks score it: with a split separator each genome of the truth becomes one
genome per sample, `S1:genome01`, made of that sample's contigs of it, so a per-sample bin
(`S1.bin.3`) can be complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vaebin.errors import InputDataError, InputFileError, ParameterError

COMPLETENESS_THRESHOLDS = (0.5, 0.7, 0.9, 0.95, 0.99)
PURITY_THRESHOLDS = (0.9, 0.95, 0.99)


@dataclass(frozen=True)
class GenomeScore:
    """How well one genome was recovered by its best bin."""

    genome: str
    genome_bp: int
    best_bin: str | None
    completeness: float
    purity: float


@dataclass(frozen=True)
class EvaluationResult:
    """Bin quality against the truth."""

    genomes: list[GenomeScore]
    n_bins: int
    near_complete: int
    # counts[f"{completeness}/{purity}"]: genomes recovered above both fractions.
    counts: dict[str, int]
    adjusted_rand_index: float
    binned_bp: int
    total_bp: int
    contigs_not_in_truth: int = 0
    thresholds: dict[str, list[float]] = field(
        default_factory=lambda: {
            "completeness": list(COMPLETENESS_THRESHOLDS),
            "purity": list(PURITY_THRESHOLDS),
        }
    )

    def count(self, completeness: float, purity: float) -> int:
        """Genomes whose best bin has completeness > `completeness` and purity > `purity`."""
        return sum(
            1
            for score in self.genomes
            if score.completeness > completeness and score.purity > purity
        )

    def to_dict(self) -> dict[str, object]:
        """Plain-python form."""
        return asdict(self)

    def to_json(self) -> str:
        """JSON text of `to_dict`."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def table(self) -> str:
        """Readable summary: the threshold grid, then one line per genome."""
        purity_header = "".join(f"  purity>{purity:<5}" for purity in PURITY_THRESHOLDS)
        lines = [
            f"genomes: {len(self.genomes)}  bins: {self.n_bins}  "
            f"near-complete (>90% complete, >95% pure): {self.near_complete}  "
            f"ARI (bp): {self.adjusted_rand_index:.4f}  "
            f"binned: {self.binned_bp}/{self.total_bp} bp",
            f"{'completeness':<14}{purity_header}",
        ]
        for completeness in COMPLETENESS_THRESHOLDS:
            cells = "".join(
                f"  {self.counts[_key(completeness, purity)]:>12}" for purity in PURITY_THRESHOLDS
            )
            lines.append(f"{'>' + str(completeness):<14}{cells}")
        lines.append(f"{'genome':<30}{'bp':>12}  {'best bin':<20}{'complete':>9}{'pure':>9}")
        for score in self.genomes:
            lines.append(
                f"{score.genome:<30}{score.genome_bp:>12}  {score.best_bin or '-':<20}"
                f"{score.completeness:>9.3f}{score.purity:>9.3f}"
            )
        return "\n".join(lines)


def _key(completeness: float, purity: float) -> str:
    return f"{completeness}/{purity}"


def _pairs(counts: np.ndarray) -> float:
    counts = counts.astype(np.float64)
    return float((counts * (counts - 1.0) / 2.0).sum())


def adjusted_rand_index(contingency: np.ndarray) -> float:
    """Adjusted Rand index of a (truth x prediction) contingency table of item counts."""
    total = float(contingency.sum())
    if total <= 1:
        return 1.0
    index = _pairs(contingency)
    truth_pairs = _pairs(contingency.sum(axis=1))
    predicted_pairs = _pairs(contingency.sum(axis=0))
    expected = truth_pairs * predicted_pairs / (total * (total - 1.0) / 2.0)
    maximum = 0.5 * (truth_pairs + predicted_pairs)
    if np.isclose(maximum, expected):
        # Both partitions trivial (one group, or all singletons): identical means agreement.
        return 1.0
    return float((index - expected) / (maximum - expected))


def per_sample_truth(truth: Mapping[str, str], separator: str) -> dict[str, str]:
    """Contig -> `<sample>:<genome>`, the sample being the contig name's part before the first
    `separator` (`S1C12` -> `S1` with `C`), as `bin --split-separator` splits bins."""
    if not separator:
        raise ParameterError("the split separator must not be empty")
    per_sample = {}
    for contig, genome in truth.items():
        sample, found, _ = contig.partition(separator)
        if not found or not sample:
            raise InputDataError(
                f"contig name {contig!r} of the truth has no sample prefix before the split "
                f"separator {separator!r}"
            )
        per_sample[contig] = f"{sample}:{genome}"
    return per_sample


def evaluate_bins(
    truth: Mapping[str, str],
    lengths: Mapping[str, int],
    bins: Mapping[str, str],
    split_separator: str | None = None,
) -> EvaluationResult:
    """Score `bins` (contig -> bin) against `truth` (contig -> genome), sizes from `lengths`.

    With `split_separator` the genomes are per sample (`per_sample_truth`), for multi-split bins.
    """
    if split_separator is not None:
        truth = per_sample_truth(truth, split_separator)
    truth_contigs = np.array(list(truth.keys()), dtype=object)
    truth_genomes = np.array(list(truth.values()), dtype=object).astype(str)
    if truth_contigs.size == 0:
        raise InputDataError("the truth assigns no contig to a genome")
    length_names = np.array(list(lengths.keys()), dtype=object).astype(str)
    length_values = np.array(list(lengths.values()), dtype=np.int64)
    truth_lengths = _lookup(truth_contigs.astype(str), length_names, length_values, "truth")

    genome_names, genome_of_truth = np.unique(truth_genomes, return_inverse=True)
    genome_bp = np.bincount(genome_of_truth, weights=truth_lengths).astype(np.int64)

    bin_contigs = np.array(list(bins.keys()), dtype=object).astype(str)
    bin_labels = np.array(list(bins.values()), dtype=object).astype(str)
    order = np.argsort(truth_contigs.astype(str))
    sorted_truth = truth_contigs.astype(str)[order]
    position = np.searchsorted(sorted_truth, bin_contigs)
    clipped = np.minimum(position, max(sorted_truth.size - 1, 0))
    known = (position < sorted_truth.size) & (sorted_truth[clipped] == bin_contigs)
    truth_row = order[clipped[known]]

    bin_names, bin_of_contig = np.unique(bin_labels[known], return_inverse=True)
    n_genomes, n_bins = genome_names.size, bin_names.size
    contingency = np.zeros((n_genomes, n_bins), dtype=np.float64)
    np.add.at(contingency, (genome_of_truth[truth_row], bin_of_contig), truth_lengths[truth_row])
    bin_bp = contingency.sum(axis=0)

    scores = _genome_scores(genome_names, genome_bp, bin_names, contingency, bin_bp)
    completeness = np.array([score.completeness for score in scores])
    purity = np.array([score.purity for score in scores])
    counts = {
        _key(c, p): int(((completeness > c) & (purity > p)).sum())
        for c in COMPLETENESS_THRESHOLDS
        for p in PURITY_THRESHOLDS
    }
    return EvaluationResult(
        genomes=scores,
        n_bins=int(np.unique(bin_labels).size),
        near_complete=counts[_key(0.9, 0.95)],
        counts=counts,
        adjusted_rand_index=adjusted_rand_index(contingency),
        binned_bp=int(bin_bp.sum()),
        total_bp=int(genome_bp.sum()),
        contigs_not_in_truth=int((~known).sum()),
    )


def _lookup(keys: np.ndarray, names: np.ndarray, values: np.ndarray, what: str) -> np.ndarray:
    """values[names == key] for every key, by binary search; every key must be present."""
    if names.size == 0:
        raise InputDataError(f"contig {str(keys[0])!r} of the {what} has no length")
    order = np.argsort(names)
    sorted_names = names[order]
    position = np.minimum(np.searchsorted(sorted_names, keys), names.size - 1)
    found = sorted_names[position] == keys
    if not np.all(found):
        missing = str(keys[np.flatnonzero(~found)[0]])
        raise InputDataError(f"contig {missing!r} of the {what} has no length")
    return values[order][position]


def _genome_scores(
    genome_names: np.ndarray,
    genome_bp: np.ndarray,
    bin_names: np.ndarray,
    contingency: np.ndarray,
    bin_bp: np.ndarray,
) -> list[GenomeScore]:
    if bin_names.size == 0:
        return [
            GenomeScore(str(name), int(size), None, 0.0, 0.0)
            for name, size in zip(genome_names, genome_bp, strict=True)
        ]
    overlap_share = contingency / np.maximum(bin_bp, 1.0)
    # Best bin: most overlapping bp; among equal overlaps the purer one. Overlaps are whole bp,
    # so half a purity (< 1) can only decide between exact ties.
    best = np.argmax(contingency + 0.5 * overlap_share, axis=1)
    rows = np.arange(len(genome_names))
    best_overlap = contingency[rows, best]
    completeness = best_overlap / np.maximum(genome_bp, 1)
    purity = overlap_share[rows, best]
    return [
        GenomeScore(
            genome=str(genome_names[row]),
            genome_bp=int(genome_bp[row]),
            best_bin=str(bin_names[best[row]]) if best_overlap[row] > 0 else None,
            completeness=float(completeness[row]),
            purity=float(purity[row]) if best_overlap[row] > 0 else 0.0,
        )
        for row in rows
    ]


def evaluate_files(
    truth_path: Path,
    bins_path: Path,
    contigs: Path | None = None,
    split_separator: str | None = None,
) -> EvaluationResult:
    """`evaluate`: score a clusters table or CAMI binning file against a CAMI truth file.

    Sequence lengths come from `contigs` (FASTA/FASTQ) when given, else from the truth's
    `_LENGTH` column; a bins file starting with '@' is read as CAMI, otherwise as a clusters table.
    With `split_separator`, multi-split bins are scored against per-sample genomes.
    """
    from vaebin.features import names_and_lengths
    from vaebin.io.cami import read_cami
    from vaebin.io.clusters import read_clusters

    truth = read_cami(truth_path)
    if contigs is not None:
        names, sizes = names_and_lengths(contigs)
        lengths = dict(zip(names.tolist(), sizes.tolist(), strict=True))
    elif truth.lengths:
        lengths = truth.lengths
    else:
        raise InputDataError(
            f"{truth_path}: no _LENGTH column; pass the sequences (--contigs) for their lengths"
        )
    bins_path = Path(bins_path)
    try:
        with open(bins_path, encoding="utf-8", errors="replace") as handle:
            first = handle.read(1)
    except OSError as error:
        raise InputFileError(f"{bins_path}: {error.strerror or error}") from None
    bins = read_cami(bins_path).assignments if first == "@" else read_clusters(bins_path)
    return evaluate_bins(truth.assignments, lengths, bins, split_separator=split_separator)
