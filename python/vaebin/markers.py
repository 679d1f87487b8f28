"""Single-copy marker genes: where the HMMs live, finding them in contigs, per-bin estimates.

The marker HMMs are the 111 Pfam/TIGRFAM profiles of the bacterial single-copy set that SemiBin
ships as ``SemiBin/marker.hmm`` in its PyPI wheel (version pinned below; origin, licences and
checksum in docs/markers.md). `fetch_markers` downloads the wheel with pip into a cache and
keeps that one member; `binning` never downloads. Four pairs of profiles are alternative forms
of one gene (see `ALTERNATIVE_PROFILES`), so the set counts 107 genes.

Detection: genes called by pyrodigal on each contig, proteins searched by pyhmmer's hmmsearch
with each model's trusted cutoffs (TC), each model against only the proteins its seed
prefilter passes on, with a stricter Forward filter (`SearchFilters`; rust/src/seeds.rs). A
protein hit by several models counts once, for its best-scoring model; a hit must cover
`min_model_coverage` of the model, so that a gene broken across two contig ends is not counted
twice. Models without TC cutoffs (none in the pinned file) fall back to their gathering cutoffs
(GA), else to a full-sequence E-value of `FALLBACK_EVALUE`.

Estimates are CheckM-style over the gene set: completeness = distinct genes present / genes in
the set; contamination = copies beyond the first, summed over genes / genes in the set.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vaebin import io
from vaebin.errors import FormatError, InputFileError, VaebinError

if TYPE_CHECKING:
    from pyhmmer.plan7 import HMM

log = logging.getLogger("vaebin")

SOURCE_PACKAGE = "semibin"
SOURCE_VERSION = "2.6.0"
SOURCE_MEMBER = "SemiBin/marker.hmm"
MARKER_SET = f"semibin-{SOURCE_VERSION}"
HMM_SHA256 = "a721073c4a18f29d09390938ff781e6a6327ebcfe6f6a38dcc91708bd74dcda9"
HMM_ENV = "VAEBIN_MARKERS_HMM"
FALLBACK_EVALUE = 1e-10

# Profiles that model another form of the same gene (their DESC lines): a bin holding one of each
# pair has one copy of the gene, not two. Key: the alternative; value: the gene's name in counts.
ALTERNATIVE_PROFILES = {
    "TIGR00389": "TIGR00388",  # glycine--tRNA ligase: dimeric glyS / alpha subunit glyQ
    "TIGR00471": "TIGR00472",  # phenylalanine--tRNA ligase beta subunit: archaeal / bacterial
    "TIGR00408": "TIGR00409",  # proline--tRNA ligase: family I / family II
    "TIGR02387": "TIGR02386",  # RNA polymerase beta' (rpoC) / cyanobacterial gamma (rpoC1)
}


class MarkersUnavailable(InputFileError):
    """The marker HMM file is not where it was asked for."""


def default_cache() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/vaebin-rs/markers``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vaebin-rs" / "markers"


def cached_hmm_path(cache: Path | None = None) -> Path:
    """Where `fetch_markers` puts the HMM file under `cache` (default: `default_cache`)."""
    return (cache or default_cache()) / MARKER_SET / "marker.hmm"


@dataclass(frozen=True)
class HmmLocation:
    """The marker HMM file to use, where that choice came from, and whether it is there."""

    path: Path
    source: str
    """"--markers-hmm", "$VAEBIN_MARKERS_HMM" or "cache"."""

    @property
    def explicit(self) -> bool:
        """Whether the user named this file (option or environment), not the default cache."""
        return self.source != "cache"

    @property
    def exists(self) -> bool:
        return self.path.is_file()


def locate_hmm(option: Path | None = None) -> HmmLocation:
    """The one lookup: ``--markers-hmm`` > ``$VAEBIN_MARKERS_HMM`` > the default cache."""
    if option is not None:
        return HmmLocation(Path(option), "--markers-hmm")
    from_env = os.environ.get(HMM_ENV)
    if from_env:
        return HmmLocation(Path(from_env), f"${HMM_ENV}")
    return HmmLocation(cached_hmm_path(), "cache")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_markers(cache: Path | None = None, python: str | None = None) -> tuple[Path, bool]:
    """Download SemiBin's wheel with pip and keep its marker.hmm in `cache`; returns the path and
    whether it was downloaded now (False: already there with the right checksum)."""
    target = cached_hmm_path(cache)
    if target.is_file() and sha256_of(target) == HMM_SHA256:
        return target, False
    with tempfile.TemporaryDirectory(prefix="vaebin-markers.") as scratch:
        command = [
            python or sys.executable,
            "-m",
            "pip",
            "download",
            f"{SOURCE_PACKAGE}=={SOURCE_VERSION}",
            "--no-deps",
            "--only-binary=:all:",
            "--ignore-requires-python",
            "--disable-pip-version-check",
            "-d",
            scratch,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(Path(scratch).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise VaebinError(
                f"pip download {SOURCE_PACKAGE}=={SOURCE_VERSION} failed "
                f"(exit {result.returncode}): {last[0]}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel, io.atomic_path(target) as temporary:
            try:
                member = wheel.open(SOURCE_MEMBER)
            except KeyError:
                raise FormatError(f"{wheels[0].name}: no {SOURCE_MEMBER}") from None
            with member, open(temporary, "wb") as out:
                shutil.copyfileobj(member, out)
            found = sha256_of(temporary)
            if found != HMM_SHA256:
                raise FormatError(
                    f"{wheels[0].name}:{SOURCE_MEMBER}: sha256 {found}, expected {HMM_SHA256}"
                )
    return target, True


# ---------------------------------------------------------------------------------------------
# the marker set


@dataclass(frozen=True)
class MarkerSet:
    """The marker HMMs of one file and the genes they count for."""

    path: Path
    sha256: str
    hmms: list[HMM]
    gene_of_model: dict[str, str]
    genes: list[str]
    """Distinct genes of the set, sorted: the denominator of the estimates."""

    @property
    def n_models(self) -> int:
        return len(self.hmms)


def _name(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def load_marker_set(path: Path) -> MarkerSet:
    """Read an HMM file (protein profiles) as a marker set."""
    import pyhmmer

    if not path.is_file():
        raise MarkersUnavailable(f"{path}: no such marker HMM file")
    try:
        with pyhmmer.plan7.HMMFile(path) as handle:
            hmms = list(handle)
    except (ValueError, EOFError, OSError) as error:
        raise FormatError(f"{path}: not an HMMER3 profile file ({error})") from None
    if not hmms:
        raise FormatError(f"{path}: no HMM in the file")
    if any(hmm.alphabet.type != "amino" for hmm in hmms):
        raise FormatError(f"{path}: marker HMMs must be protein profiles")
    gene_of_model = {}
    for hmm in hmms:
        name = _name(hmm.name)
        gene_of_model[name] = ALTERNATIVE_PROFILES.get(name, name)
    return MarkerSet(
        path=path,
        sha256=sha256_of(path),
        hmms=hmms,
        gene_of_model=gene_of_model,
        genes=sorted(set(gene_of_model.values())),
    )


def profile_scores(hmms: Sequence[HMM]) -> list[np.ndarray]:
    """Each model's match-state scores in bits, log2(emission / background), states x 20 in
    the amino alphabet's order (ACDEFGHIKLMNPQRSTVWY): what the seed prefilter scores k-mers by."""
    import pyhmmer

    background = np.asarray(
        pyhmmer.plan7.Background(pyhmmer.easel.Alphabet.amino()).residue_frequencies,
        dtype=np.float64,
    )[:20]
    scores = []
    for hmm in hmms:
        emissions = np.asarray(hmm.match_emissions, dtype=np.float64)[1:, :20]
        with np.errstate(divide="ignore"):
            bits = np.log2(emissions / background)
        scores.append(np.ascontiguousarray(np.maximum(bits, -30.0), dtype=np.float32))
    return scores


@dataclass(frozen=True)
class SearchFilters:
    """Two shortcuts of the search that skip pairs which cannot reach a model's trusted cutoff
    (docs/markers.md, "Search filters"). Without them (`--no-marker-filters`) every protein goes
    through every model's HMMER pipeline.

    1. The seed prefilter (rust/src/seeds.rs): a model is searched only against the proteins
       holding two of its seeds (k-mers scoring `seed_bits` against k of its match states) on
       one diagonal, at most `window` residues apart, whose ungapped extension (X-drop
       `x_drop_bits`) reaches `min_bits`. It saves HMMER's first filter (MSV) on the rest.
    2. A stricter Forward filter per model: a protein goes on to HMMER's domain stage only if
       its Forward score is at most `forward_margin_bits` below the model's trusted cutoff for
       the whole sequence (HMMER's own F3 P-value of 1e-5 still applies where stricter). This
       saves the domain stage on paralogs far below the cutoff. None: HMMER's F3 only.

    A model whose trusted cutoff is below `full_search_below_bits` (or that has none) is
    searched against every protein: a hit to a short model with a low cutoff may hold no
    ungapped segment of `min_bits` (the short ribosomal proteins of the pinned set, cutoffs
    21-25 bits; 21 of its 111 models, 8 % of its match states).

    The seed and extension settings were chosen on real set 2, a tuning set: the fastest that
    kept all 1,217 of its hits. The full search of low-cutoff models was added after sets 4 and
    5 (held out until then) lost 2 hits each to short ribosomal models; docs/markers.md says
    which sets are held out for the filters now."""

    k: int = 4
    seed_bits: float = 7.0
    x_drop_bits: float = 15.0
    window: int = 60
    min_bits: float = 20.0
    full_search_below_bits: float = 40.0
    forward_margin_bits: float | None = 60.0


# HMMER's default Forward filter P-value (F3).
HMMER_F3 = 1e-5
# A marker set with more match states than this (the pinned one has 34,284) is searched without
# the filters: its seed table would pass 100 MB (about 35 entries of 4 bytes per state at the
# default seed threshold).
FILTERS_MAX_STATES = 700_000

# ---------------------------------------------------------------------------------------------
# detection


@dataclass
class MarkerHits:
    """Marker genes found on each contig, with what it took."""

    contig_genes: dict[int, list[str]]
    """Row index (in the `names` given to `find_markers`) -> marker genes on it (with repeats)."""
    genes_called: int
    hits: int
    contigs_searched: int
    bp_searched: int
    gene_calling_seconds: float
    search_seconds: float
    cpu_seconds: float
    models_without_tc: list[str] = field(default_factory=list)
    gene_calling: str = "meta"
    contigs_recalled_meta: int = 0
    """With "trained": contigs called again in metagenomic mode (RECALL_CODING_DENSITY)."""
    filters: dict[str, object] = field(default_factory=lambda: {"status": "off"})
    """What the search filters passed on to HMMER (see `SearchFilters`)."""


def _read_contigs(contigs: Path, wanted: dict[str, int]) -> list[tuple[int, bytes]]:
    """Sequences of the contigs named in `wanted` (name -> row), as (row, letters), read by the
    project's one sequence reader (the Rust core's, with its checks and messages)."""
    from vaebin import _core

    names = sorted(wanted, key=wanted.__getitem__)
    sequences = _core.selected_sequences(str(contigs), names)
    return [(wanted[name], sequence) for name, sequence in zip(names, sequences, strict=True)]


GENE_CALLING = ("meta", "trained")
# "trained" fits one Prodigal model on at most this many bp of the contigs, the longest.
# Training memory grows with it (real set 3, whole marker step: 11.1 Mbp trained on 427 MB peak,
# 4 Mbp 242 MB, with the same 319 marker hits; 1 Mbp lost 3 of them).
TRAINING_BP = 8_000_000
# Prodigal needs this much sequence to train on; below it "trained" falls back to "meta".
MIN_TRAINING_BP = 20_000
# With "trained", a contig of at least RECALL_MIN_BP whose genes under the trained model cover
# less than RECALL_CODING_DENSITY of it is called again in metagenomic mode, and the call that
# covers more is kept. Prokaryotic genomes are 85-90 % coding; a genome the pooled model does
# not fit reads far lower: a Mycoplasma (genetic code 4, where TGA is Trp, not a stop) under the
# trained code-11 model lost half its marker genes on held-out real set 4 (54 % against 97 %
# complete in metagenomic mode, whose 50 models include code 4).
RECALL_CODING_DENSITY = 0.7
RECALL_MIN_BP = 5_000


def _gene_finder(sequences: list[tuple[int, bytes]], gene_calling: str) -> tuple[Any, str]:
    """A pyrodigal GeneFinder: metagenomic mode (50 pre-trained models, the best per contig),
    or one model trained on the longest contigs pooled; returns it and the mode used."""
    import pyrodigal

    if gene_calling not in GENE_CALLING:
        raise ValueError(f"gene calling {gene_calling!r} is not one of {GENE_CALLING}")
    total = sum(len(s) for _, s in sequences)
    if gene_calling == "meta" or total < MIN_TRAINING_BP:
        return pyrodigal.GeneFinder(meta=True), "meta"
    training, kept = [], 0
    for _, sequence in sorted(sequences, key=lambda item: -len(item[1])):
        if kept >= TRAINING_BP:
            break
        training.append(sequence)
        kept += len(sequence)
    finder = pyrodigal.GeneFinder()
    finder.train(*training)
    return finder, "trained"


def _coding_fraction(genes: Any, length: int) -> float:
    """Share of a contig's `length` bp that its called genes cover (overlaps counted twice)."""
    return sum(gene.end - gene.begin + 1 for gene in genes) / max(length, 1)


def _call_genes(
    sequences: list[tuple[int, bytes]], threads: int, finder: Any, fallback: Any = None
) -> tuple[list[tuple[int, list[str]]], int]:
    """Proteins of each contig (threads share one finder: pyrodigal releases the GIL), and how
    many contigs were called again by `fallback` (see RECALL_CODING_DENSITY)."""

    def proteins(item: tuple[int, bytes]) -> tuple[int, list[str], bool]:
        row, sequence = item
        genes = finder.find_genes(sequence)
        recalled = False
        if fallback is not None and len(sequence) >= RECALL_MIN_BP:
            density = _coding_fraction(genes, len(sequence))
            if density < RECALL_CODING_DENSITY:
                again = fallback.find_genes(sequence)
                if _coding_fraction(again, len(sequence)) > density:
                    genes, recalled = again, True
        return row, [gene.translate(include_stop=False) for gene in genes], recalled

    # Longest first, so that one thread is not left with the largest contig at the end.
    order = sorted(sequences, key=lambda item: -len(item[1]))
    if threads <= 1:
        called = [proteins(item) for item in order]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            called = list(pool.map(proteins, order))
    return [(row, found) for row, found, _ in called], sum(again for _, _, again in called)


def _seed_candidates(
    marker_set: MarkerSet, sequences: list[str], prefilter: SearchFilters, threads: int
) -> tuple[list[np.ndarray], dict[str, object]]:
    """Per model, the proteins the seed prefilter passes on, and what that saved."""
    from vaebin import _core

    started = time.perf_counter()
    index = _core.MarkerSeeds(
        profile_scores(marker_set.hmms),
        prefilter.k,
        prefilter.seed_bits,
        prefilter.x_drop_bits,
        prefilter.window,
        threads=threads,
    )
    candidates = index.candidates([s.encode() for s in sequences], prefilter.min_bits, threads)
    everything = np.arange(len(sequences), dtype=np.uint32)
    in_full = 0
    for m, hmm in enumerate(marker_set.hmms):
        if _sequence_cutoff(hmm) < prefilter.full_search_below_bits:
            candidates[m] = everything
            in_full += 1
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.float64, count=len(sequences))
    states = np.array([hmm.M for hmm in marker_set.hmms], dtype=np.float64)
    cells = sum(float(lengths[rows].sum()) * m for rows, m in zip(candidates, states, strict=True))
    pairs = sum(len(rows) for rows in candidates)
    return candidates, {
        "status": "on",
        **{key: getattr(prefilter, key) for key in SearchFilters.__dataclass_fields__},
        "models_searched_in_full": in_full,
        "pairs_searched": pairs,
        "pairs_total": len(sequences) * len(marker_set.hmms),
        "cells_searched_percent": round(100.0 * cells / max(lengths.sum() * states.sum(), 1.0), 3),
        "seconds": round(time.perf_counter() - started, 3),
    }


CutoffKind = tuple[tuple[str, Any], ...]


def _cutoff_kind(hmm: HMM) -> CutoffKind:
    """The pipeline options that report a model's hits: its trusted cutoffs, else its gathering
    cutoffs, else FALLBACK_EVALUE (sorted items, usable as a key)."""
    if hmm.cutoffs.trusted_available():
        return (("bit_cutoffs", "trusted"),)
    if hmm.cutoffs.gathering_available():
        return (("bit_cutoffs", "gathering"),)
    return (("E", FALLBACK_EVALUE), ("domE", FALLBACK_EVALUE))


def _sequence_cutoff(hmm: HMM) -> float:
    """The model's trusted cutoff for the whole sequence, else its gathering cutoff, else
    minus infinity (bits)."""
    if hmm.cutoffs.trusted_available():
        return float(hmm.cutoffs.trusted[0])
    if hmm.cutoffs.gathering_available():
        return float(hmm.cutoffs.gathering[0])
    return float("-inf")


def _forward_filter(hmm: HMM, filters: SearchFilters | None) -> float:
    """HMMER's F3 P-value for `hmm`: the P-value of a Forward score `forward_margin_bits` below
    the model's trusted sequence cutoff (HMMER's Forward E-value parameters), where stricter
    than HMMER's default."""
    if (
        filters is None
        or filters.forward_margin_bits is None
        or not hmm.cutoffs.trusted_available()
    ):
        return HMMER_F3
    trusted = hmm.cutoffs.trusted[0]
    parameters = hmm.evalue_parameters
    bits = trusted - filters.forward_margin_bits
    exponent = -parameters.f_lambda * (bits - parameters.f_tau)
    return min(HMMER_F3, float(np.exp(min(exponent, 0.0))))


# What the search keeps of each hit: protein index, bit score, share of the model covered by
# its best domain. TopHits are read as soon as a model is searched and dropped (they keep their
# target sequences alive).
Hit = tuple[int, float, float]


def _included_hits(hmm: HMM, top_hits: Any) -> list[Hit]:
    """The included hits of one model's search."""
    kept = []
    for hit in top_hits:
        if hit.included:
            alignment = hit.best_domain.alignment
            covered = (alignment.hmm_to - alignment.hmm_from + 1) / hmm.M
            kept.append((int(_name(hit.name)), float(hit.score), covered))
    return kept


def _search_all(
    marker_set: MarkerSet, digital: list[Any], threads: int
) -> list[tuple[HMM, list[Hit]]]:
    """Every protein against every model: pyhmmer's hmmsearch, one call per kind of cutoff."""
    import pyhmmer

    if not digital:
        return []
    block = pyhmmer.easel.DigitalSequenceBlock(pyhmmer.easel.Alphabet.amino(), digital)
    kinds: dict[CutoffKind, list[HMM]] = {}
    for hmm in marker_set.hmms:
        kinds.setdefault(_cutoff_kind(hmm), []).append(hmm)
    searched = []
    for kind, hmms in kinds.items():
        for hmm, top_hits in zip(
            hmms, pyhmmer.hmmsearch(hmms, block, cpus=threads, **dict(kind)), strict=True
        ):
            searched.append((hmm, _included_hits(hmm, top_hits)))
    return searched


def _search_candidates(
    marker_set: MarkerSet,
    digital: list[Any],
    candidates: list[np.ndarray],
    filters: SearchFilters,
    threads: int,
) -> list[tuple[HMM, list[Hit]]]:
    """Each model against its candidate proteins, with its Forward filter; E-values as if
    against every protein (Z), so that the search reports what the full search reports on the
    same pairs. Models searched against every protein share one block."""
    import pyhmmer

    alphabet = pyhmmer.easel.Alphabet.amino()
    jobs = [(hmm, rows) for hmm, rows in zip(marker_set.hmms, candidates, strict=True) if len(rows)]
    everything = None
    if any(len(rows) == len(digital) for _, rows in jobs):
        everything = pyhmmer.easel.DigitalSequenceBlock(alphabet, digital)

    # One pipeline per thread and kind of cutoff, its F3 set per model: a new pipeline per
    # model grew the process by about 4 MB a model (real set 5: 567 MB against 170 MB).
    local = threading.local()

    def search(job: tuple[HMM, np.ndarray]) -> list[Hit]:
        hmm, rows = job
        pipelines = local.__dict__.setdefault("pipelines", {})
        kind = _cutoff_kind(hmm)
        if kind not in pipelines:
            pipelines[kind] = pyhmmer.plan7.Pipeline(alphabet, Z=len(digital), **dict(kind))
        pipeline = pipelines[kind]
        pipeline.F3 = _forward_filter(hmm, filters)
        if everything is not None and len(rows) == len(digital):
            block = everything
        else:
            block = pyhmmer.easel.DigitalSequenceBlock(alphabet, [digital[i] for i in rows])
        return _included_hits(hmm, pipeline.search_hmm(hmm, block))

    # The costliest first, so that no thread is left with a long one at the end.
    order = sorted(range(len(jobs)), key=lambda j: -jobs[j][0].M * len(jobs[j][1]))
    if threads <= 1:
        found = [search(jobs[j]) for j in order]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            found = list(pool.map(lambda j: search(jobs[j]), order))
    results: list[list[Hit]] = [[] for _ in jobs]
    for j, hits in zip(order, found, strict=True):
        results[j] = hits
    return [(hmm, hits) for (hmm, _), hits in zip(jobs, results, strict=True)]


def _search(
    marker_set: MarkerSet,
    proteins: list[tuple[int, list[str]]],
    threads: int,
    min_model_coverage: float,
    filters: SearchFilters | None = None,
) -> tuple[dict[int, list[str]], int, list[str], dict[str, object]]:
    """hmmsearch of the proteins against the set: contig row -> genes (one per protein); each
    model against every protein, or with `filters` against those the seed prefilter passes on
    and with a stricter Forward filter."""
    import pyhmmer

    alphabet = pyhmmer.easel.Alphabet.amino()
    sequences: list[str] = []
    protein_contig: list[int] = []
    for row, contig_proteins in proteins:
        sequences.extend(contig_proteins)
        protein_contig.extend([row] * len(contig_proteins))
    digital = [
        pyhmmer.easel.TextSequence(name=str(i).encode(), sequence=protein).digitize(alphabet)
        for i, protein in enumerate(sequences)
    ]
    states = sum(hmm.M for hmm in marker_set.hmms)
    if filters is None or not digital or states > FILTERS_MAX_STATES:
        searched = _search_all(marker_set, digital, threads)
        if filters is None:
            reason = "--no-marker-filters"
        elif not digital:
            reason = "no proteins"
        else:
            reason = f"{states} match states, over the seed table's {FILTERS_MAX_STATES}"
        filter_block: dict[str, object] = {"status": "off", "reason": reason}
    else:
        candidates, filter_block = _seed_candidates(marker_set, sequences, filters, threads)
        searched = _search_candidates(marker_set, digital, candidates, filters, threads)
    best: dict[int, tuple[float, str]] = {}  # protein -> (score, gene)
    for hmm, hits in searched:
        gene = marker_set.gene_of_model[_name(hmm.name)]
        for protein, score, covered in hits:
            if covered < min_model_coverage:
                continue
            if protein not in best or score > best[protein][0]:
                best[protein] = (score, gene)
    contig_genes: dict[int, list[str]] = {}
    for protein in sorted(best):
        contig_genes.setdefault(protein_contig[protein], []).append(best[protein][1])
    for genes in contig_genes.values():
        genes.sort()
    without_tc = [_name(h.name) for h in marker_set.hmms if not h.cutoffs.trusted_available()]
    return contig_genes, len(best), without_tc, filter_block


def find_markers(
    contigs: Path,
    names: Sequence[str] | np.ndarray,
    marker_set: MarkerSet,
    threads: int = 1,
    min_model_coverage: float = 0.4,
    gene_calling: str = "meta",
    filters: SearchFilters | None = SearchFilters(),
) -> MarkerHits:
    """Marker genes on each contig named in `names` (rows of the result are rows of `names`).

    `gene_calling`: "meta" (Prodigal's metagenomic mode) or "trained" (one Prodigal model
    trained on the longest TRAINING_BP of the contigs pooled; about 4x less CPU, and on five
    real genomes of 33-65 % GC pooled it found the same marker genes in each as "meta").
    `filters`: the search's shortcuts (None: every protein through every model's pipeline)."""
    threads = max(1, threads)
    wanted = {str(name): row for row, name in enumerate(names)}
    cpu_started = time.process_time()
    started = time.perf_counter()
    sequences = _read_contigs(contigs, wanted)
    finder, gene_calling = _gene_finder(sequences, gene_calling)
    fallback = None
    if gene_calling == "trained":
        import pyrodigal

        fallback = pyrodigal.GeneFinder(meta=True)
    proteins, recalled = _call_genes(sequences, threads, finder, fallback)
    called = time.perf_counter()
    contig_genes, n_hits, without_tc, filter_block = _search(
        marker_set, proteins, threads, min_model_coverage, filters
    )
    searched = time.perf_counter()
    return MarkerHits(
        contig_genes=contig_genes,
        genes_called=sum(len(p) for _, p in proteins),
        hits=n_hits,
        contigs_searched=len(sequences),
        bp_searched=sum(len(s) for _, s in sequences),
        gene_calling_seconds=round(called - started, 3),
        search_seconds=round(searched - called, 3),
        cpu_seconds=round(time.process_time() - cpu_started, 3),
        models_without_tc=without_tc,
        gene_calling=gene_calling,
        contigs_recalled_meta=recalled,
        filters=filter_block,
    )


# ---------------------------------------------------------------------------------------------
# estimates


@dataclass(frozen=True)
class BinEstimate:
    """Marker-based quality of one bin (percent of the genes of the set)."""

    completeness: float
    contamination: float
    genes_found: int
    extra_copies: int


def gene_counts(
    labels: np.ndarray, contig_genes: dict[int, list[str]], genes: Sequence[str], n_bins: int
) -> np.ndarray:
    """bins x genes copy counts; `labels` gives each row's bin (negative: unbinned)."""
    column = {gene: j for j, gene in enumerate(genes)}
    counts = np.zeros((n_bins, len(genes)), dtype=np.int64)
    for row, row_genes in contig_genes.items():
        label = int(labels[row])
        if label < 0:
            continue
        for gene in row_genes:
            counts[label, column[gene]] += 1
    return counts


def estimate(counts: np.ndarray) -> BinEstimate:
    """CheckM-style estimate from one bin's copy count of each gene of the set."""
    n_genes = counts.shape[0]
    found = int((counts > 0).sum())
    extra = int(np.maximum(counts - 1, 0).sum())
    return BinEstimate(
        completeness=round(100.0 * found / n_genes, 2),
        contamination=round(100.0 * extra / n_genes, 2),
        genes_found=found,
        extra_copies=extra,
    )


def bin_estimates(
    labels: np.ndarray, contig_genes: dict[int, list[str]], genes: Sequence[str], n_bins: int
) -> list[BinEstimate]:
    """One estimate per bin (bin index = label)."""
    return [estimate(row) for row in gene_counts(labels, contig_genes, genes, n_bins)]


# ---------------------------------------------------------------------------------------------
# the marker step of `bin`


def plan_markers(wanted: bool | None, hmm_option: Path | None) -> tuple[MarkerSet | None, dict]:
    """The marker set a run uses, or None, with the start of its summary.json block.

    `wanted`: True (--markers), False (--no-markers) or None (on when the HMM file is found).
    A file the user named (--markers-hmm, $VAEBIN_MARKERS_HMM) or asked for (--markers) must
    exist; the default cache missing only skips the step, with one warning.
    """
    if wanted is False:
        return None, {"status": "off", "reason": "--no-markers"}
    location = locate_hmm(hmm_option)
    if not location.exists:
        if wanted or location.explicit:
            raise MarkersUnavailable(
                f"{location.path}: no such marker HMM file ({location.source}); "
                "run `vaebin-rs fetch-markers` or pass --no-markers"
            )
        reason = f"no marker HMM file at {location.path} (run `vaebin-rs fetch-markers`)"
        log.warning("marker genes skipped: %s", reason)
        return None, {"status": "skipped", "reason": reason}
    marker_set = load_marker_set(location.path)
    return marker_set, {
        "status": "on",
        "hmm": str(location.path),
        "hmm_from": location.source,
        "sha256": marker_set.sha256,
        "marker_set": MARKER_SET if marker_set.sha256 == HMM_SHA256 else "custom",
        "models": marker_set.n_models,
        "genes_in_set": len(marker_set.genes),
    }


def hits_summary(hits: MarkerHits) -> dict[str, object]:
    """What detection found and cost, for summary.json (times under "seconds" keys)."""
    return {
        "gene_calling": hits.gene_calling,
        "contigs_searched": hits.contigs_searched,
        "bp_searched": hits.bp_searched,
        "genes_called": hits.genes_called,
        "marker_hits": hits.hits,
        "contigs_with_markers": len(hits.contig_genes),
        "models_without_tc": hits.models_without_tc,
        "contigs_recalled_meta": hits.contigs_recalled_meta,
        "filters": hits.filters,
        "time": {
            "gene_calling": {"seconds": hits.gene_calling_seconds},
            "search": {"seconds": hits.search_seconds},
            "cpu": {"seconds": hits.cpu_seconds},
        },
    }
