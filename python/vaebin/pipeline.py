"""The binning pipeline: features -> model input -> latent -> clusters -> files.

Each step is a function over plain arrays and paths, callable alone (the CLI's `featurize`,
`train` and `cluster` commands) or chained by `run_bin`. Nothing here parses arguments or prints.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vaebin import __version__, core_version, features, io, markers
from vaebin.cluster import ClusterConfig, ClusterResult, ContigMarkers, cluster_latent
from vaebin.encode import EncodeConfig, ModelInput, build_model_input
from vaebin.errors import InputDataError, InputFileError, ParameterError
from vaebin.io.bin_table import write_bin_table
from vaebin.train_config import TrainConfig

if TYPE_CHECKING:  # torch is imported only where a model is trained or used
    from vaebin.train import TrainedModel

log = logging.getLogger("vaebin")

FEATURE_FILES = ("composition.npy", "contigs.tsv", "depths.npy", "samples.txt")


@dataclass(frozen=True)
class ContigFeatures:
    """Composition and abundance of every contig of an assembly, in FASTA order."""

    names: np.ndarray
    lengths: np.ndarray
    composition: np.ndarray
    depths: np.ndarray
    """float32 contigs x samples mean depth."""
    sample_names: list[str]

    @property
    def n_contigs(self) -> int:
        """Number of contigs."""
        return int(self.lengths.shape[0])


@dataclass
class StepLog:
    """Wall time and peak memory of each pipeline step, for summary.json."""

    steps: dict[str, dict[str, float]] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step and record the process's peak resident memory after it."""
        io.kill_point(f"step:{name}")
        started = time.perf_counter()
        yield
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.steps[name] = {
            "seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mb": round(peak_kib / 1024, 1),
        }
        log.info("%s done in %.1f s", name, self.steps[name]["seconds"])


def _rows_of(names: np.ndarray, table_names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The row of each of `names` in `table_names` (by binary search), and the names not there
    (their rows are meaningless)."""
    order = np.argsort(table_names, kind="stable")
    sorted_names = table_names[order]
    position = np.searchsorted(sorted_names, names)
    clipped = np.minimum(position, max(sorted_names.size - 1, 0))
    found = (position < sorted_names.size) & (sorted_names[clipped] == names)
    return order[clipped], names[~found]


def _align_depths(
    names: np.ndarray, lengths: np.ndarray, table: object, source: str
) -> tuple[np.ndarray, list[str]]:
    """Rows of a depth table in the order of `names`, checking every contig is there."""
    table_names = np.asarray(table.names).astype(str)  # type: ignore[attr-defined]
    table_lengths = np.asarray(table.lengths, dtype=np.int64)  # type: ignore[attr-defined]
    depth = np.asarray(table.depths, dtype=np.float32)  # type: ignore[attr-defined]
    rows, missing = _rows_of(names, table_names)
    if missing.size:
        raise InputDataError(
            f"{source}: {missing.size} contigs of the assembly have no depth row "
            f"(first: {', '.join(missing[:3])})"
        )
    from vaebin.io.depth_table import lengths_match

    wrong_length = ~lengths_match(table_lengths[rows], lengths)
    if wrong_length.any():
        first = int(np.flatnonzero(wrong_length)[0])
        raise InputDataError(
            f"{source}: {int(wrong_length.sum())} contigs have another length than in the "
            f"assembly (first: {names[first]}, {table_lengths[rows[first]]} vs {lengths[first]} bp)"
        )
    return depth[rows], [str(s) for s in table.sample_names]  # type: ignore[attr-defined]


def load_contig_features(
    contigs: Path,
    bams: Sequence[Path] = (),
    depth_table: Path | None = None,
    threads: int | None = None,
    coverage_options: dict[str, object] | None = None,
    kmer_size: int = 4,
    min_length: int = 0,
) -> ContigFeatures:
    """Composition of `contigs` and depth per sample, from BAM files or a MetaBAT2 depth table."""
    from vaebin.io.depth_table import read_depth_table

    if bool(bams) == (depth_table is not None):
        raise ParameterError("give either BAM files or a depth table")
    composition = features.composition(contigs, k=kmer_size, min_length=min_length, threads=threads)
    if composition.records_kept == 0:
        raise InputDataError(f"{contigs}: no contig of at least {min_length} bp")
    names, lengths = composition.names, composition.lengths
    if depth_table is not None:
        table = read_depth_table(depth_table)
        depth, sample_names = _align_depths(names, lengths, table, str(depth_table))
    else:
        coverage = features.coverage(
            contigs, list(bams), threads=threads, **(coverage_options or {})
        )
        depth, sample_names = _align_depths(names, lengths, coverage, str(bams[0]))
    return ContigFeatures(
        names=names,
        lengths=lengths,
        composition=composition.matrix,
        depths=depth,
        sample_names=sample_names,
    )


def save_features(directory: Path, contig_features: ContigFeatures) -> None:
    """Write the features as .npy files and small tables (what `vaebin-rs train` reads)."""
    io.remove_outputs(directory, io.FEATURIZE_OUTPUTS)
    io.save_npy(directory / "composition.npy", contig_features.composition)
    io.save_npy(directory / "depths.npy", contig_features.depths)
    io.write_contig_table(directory / "contigs.tsv", contig_features.names, contig_features.lengths)
    with io.atomic_text(directory / "samples.txt") as handle:
        handle.write("".join(f"{name}\n" for name in contig_features.sample_names))


def load_features(directory: Path) -> ContigFeatures:
    """Read features written by `save_features`."""
    for name in FEATURE_FILES:
        if not (directory / name).is_file():
            raise InputFileError(
                f"{directory / name}: no such file "
                "(run `vaebin-rs featurize` with --bam or --depth)"
            )
    names, lengths = io.read_contig_table(directory / "contigs.tsv")
    composition = io.load_npy(directory / "composition.npy")
    depth = io.load_npy(directory / "depths.npy")
    samples = (directory / "samples.txt").read_text().split()
    if (
        composition.ndim != 2
        or depth.ndim != 2
        or not (composition.shape[0] == depth.shape[0] == names.shape[0])
        or depth.shape[1] != len(samples)
    ):
        raise InputDataError(f"{directory}: feature files disagree in their number of contigs")
    return ContigFeatures(
        names=names,
        lengths=lengths,
        composition=composition,
        depths=depth,
        sample_names=samples,
    )


@dataclass(frozen=True)
class Embedding:
    """Latent means of the contigs kept for training, with what produced them."""

    model_input: ModelInput
    latent_means: np.ndarray
    model: TrainedModel
    loss_history: list[dict[str, float]]
    device: str


def embed(
    contig_features: ContigFeatures,
    encode_config: EncodeConfig,
    train_config: TrainConfig,
    model_path: Path | None = None,
) -> Embedding:
    """Train a VAE on the features (or reuse the model at `model_path`) and encode the contigs."""
    from vaebin.train import encode_latent, load_model, train_vae

    # A reused model encodes new data with the normalisation statistics of its training data.
    model = None if model_path is None else load_model(model_path, device=train_config.device)
    model_input = build_model_input(
        contig_features.composition,
        contig_features.depths,
        contig_features.lengths,
        contig_features.names,
        encode_config,
        stats=None if model is None else model.stats,
    )
    if model is not None:
        return Embedding(model_input, encode_latent(model, model_input), model, [], "reused")
    result = train_vae(model_input, train_config)
    return Embedding(
        model_input, result.latent_means, result.model, result.loss_history, result.device
    )


def save_embedding(outdir: Path, embedding: Embedding) -> None:
    """Write model.pt, latent.npy and latent_contigs.tsv (rows of latent.npy)."""
    from vaebin.train import save_model

    save_model(outdir / "model.pt", embedding.model)
    io.save_npy(outdir / "latent.npy", embedding.latent_means)
    io.write_contig_table(
        outdir / "latent_contigs.tsv",
        embedding.model_input.names.astype(str),
        embedding.model_input.contig_lengths,
    )


def load_embedding_table(outdir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latent means with the names and lengths of their rows, as written by `save_embedding`."""
    latent_path, table_path = outdir / "latent.npy", outdir / "latent_contigs.tsv"
    for path in (latent_path, table_path):
        if not path.is_file():
            raise InputFileError(f"{path}: no such file (run `vaebin-rs train` first)")
    latent = io.load_npy(latent_path)
    names, lengths = io.read_contig_table(table_path)
    if latent.ndim != 2 or names.shape[0] != latent.shape[0]:
        raise InputDataError(
            f"{table_path}: {names.shape[0]} rows for {latent.shape[0]} latent rows"
        )
    return latent, names, lengths


def write_bin_outputs(
    outdir: Path,
    contigs: Path,
    names: np.ndarray,
    lengths: np.ndarray,
    clustering: ClusterResult,
    all_names: np.ndarray,
    sample_id: str,
    write_fasta: bool = True,
) -> dict[str, object]:
    """clusters.tsv, clusters.binning (CAMI), bins/<bin>.fna.gz and unbinned.fna.gz."""
    from vaebin import _core
    from vaebin.io.cami import write_cami_binning
    from vaebin.io.clusters import write_clusters

    binned = np.flatnonzero(clustering.labels >= 0)
    # Rows grouped by bin (in bin order), contigs in assembly order within a bin.
    binned = binned[np.argsort(clustering.labels[binned], kind="stable")]
    bin_names = np.asarray(clustering.bin_names, dtype=object)
    row_bins = bin_names[clustering.labels[binned]].astype(str)
    row_contigs = names[binned].astype(str)
    write_clusters(outdir / "clusters.tsv", row_bins, row_contigs)
    write_cami_binning(
        outdir / "clusters.binning", row_contigs, row_bins, lengths[binned], sample_id=sample_id
    )
    bin_bp = np.bincount(
        clustering.labels[binned], weights=lengths[binned], minlength=len(bin_names)
    )
    bin_contigs = np.bincount(clustering.labels[binned], minlength=len(bin_names))
    if write_fasta:
        bins_dir = outdir / "bins"
        bins_dir.mkdir(parents=True, exist_ok=True)
        for stale in bins_dir.glob("*.fna.gz"):
            stale.unlink()
        in_bin = np.isin(all_names, row_contigs)
        unbinned_names = all_names[~in_bin]
        output_paths = [bins_dir / f"{name}.fna.gz" for name in clustering.bin_names]
        output_paths.append(outdir / "unbinned.fna.gz")
        every_name = np.concatenate([row_contigs, unbinned_names.astype(str)]).astype(bytes)
        every_output = np.concatenate(
            [clustering.labels[binned], np.full(unbinned_names.size, len(clustering.bin_names))]
        )
        width = max(1, every_name.dtype.itemsize)
        _core.write_bins(
            str(contigs),
            every_name.astype(f"S{width}").tobytes(),
            width,
            every_output.astype(np.int64).tolist(),
            [str(p) for p in output_paths],
        )
    return {
        "bins": [
            {"name": str(name), "contigs": int(n), "bp": int(bp)}
            for name, n, bp in zip(clustering.bin_names, bin_contigs, bin_bp, strict=True)
        ],
        "binned_contigs": int(binned.size),
        "binned_bp": int(lengths[binned].sum()),
    }


@dataclass(frozen=True)
class BinRequest:
    """Everything `run_bin` needs besides the per-stage configurations."""

    contigs: Path
    outdir: Path
    bams: tuple[Path, ...] = ()
    depth_table: Path | None = None
    model_path: Path | None = None
    threads: int | None = None
    coverage_options: dict[str, object] = field(default_factory=dict)
    write_fasta: bool = True
    plot: bool = False
    markers: bool | None = None
    """True: --markers; False: --no-markers; None: on when the marker HMM file is found."""
    markers_hmm: Path | None = None
    marker_gene_calling: str = "trained"
    marker_filters: bool = True
    """The marker search's shortcuts (markers.SearchFilters); False: --no-marker-filters."""


def _marker_columns(estimates: list[markers.BinEstimate]) -> list[dict[str, object]]:
    return [
        {
            "marker_completeness": e.completeness,
            "marker_contamination": e.contamination,
            "marker_genes": e.genes_found,
            "marker_extra_copies": e.extra_copies,
        }
        for e in estimates
    ]


def _return_freed_memory() -> None:
    """Hand the heap that finished steps freed back to the system (glibc keeps it otherwise, and
    torch's allocations, mapped separately, cannot reuse it). No-op where there is no glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


def run_bin(
    request: BinRequest,
    encode_config: EncodeConfig,
    train_config: TrainConfig,
    cluster_config: ClusterConfig,
) -> dict[str, object]:
    """Bin an assembly end to end; returns the summary also written to summary.json."""
    outdir = request.outdir
    outdir.mkdir(parents=True, exist_ok=True)
    # summary.json, written last, marks a complete run: an earlier run's must not stand beside
    # the outputs of this one should it be killed.
    io.remove_outputs(outdir, ["summary.json"])
    steps = StepLog()
    started = time.perf_counter()
    # Before any work: a marker file the user named must exist.
    marker_set, marker_block = markers.plan_markers(request.markers, request.markers_hmm)
    with steps.step("features"):
        contig_features = load_contig_features(
            request.contigs,
            request.bams,
            request.depth_table,
            request.threads,
            request.coverage_options,
        )
        save_features(outdir / "features", contig_features)
    log.info(
        "%d contigs, %d samples (%s)",
        contig_features.n_contigs,
        len(contig_features.sample_names),
        ", ".join(contig_features.sample_names),
    )
    # Markers on the contigs the model embeds (build_model_input keeps those of at least
    # min_contig_len, in this order), found before training: gene calling and search peak at a
    # few hundred MB, which then do not add to torch's (docs/markers.md, "Memory").
    embedded = contig_features.names[contig_features.lengths >= encode_config.min_contig_len]
    marker_hits = None
    if marker_set is not None and embedded.size:
        with steps.step("markers"):
            marker_hits = markers.find_markers(
                request.contigs,
                embedded.astype(str).tolist(),
                marker_set,
                threads=request.threads or os.cpu_count() or 1,
                gene_calling=request.marker_gene_calling,
                filters=markers.SearchFilters() if request.marker_filters else None,
            )
        marker_block.update(markers.hits_summary(marker_hits))
        _return_freed_memory()
        log.info(
            "marker genes: %d genes called on %d contigs, %d marker hits on %d contigs",
            marker_hits.genes_called,
            marker_hits.contigs_searched,
            marker_hits.hits,
            len(marker_hits.contig_genes),
        )
    with steps.step("train"):
        embedding = embed(contig_features, encode_config, train_config, request.model_path)
        save_embedding(outdir, embedding)
    model_input = embedding.model_input
    log.info(
        "%d contigs of at least %d bp embedded; %d shorter left out",
        model_input.n_contigs,
        encode_config.min_contig_len,
        model_input.n_short,
    )
    with steps.step("cluster"):
        clustering = cluster_latent(
            embedding.latent_means,
            model_input.contig_lengths,
            model_input.names,
            cluster_config,
            depths=contig_features.depths[model_input.kept],
            markers=None
            if marker_set is None or marker_hits is None
            else ContigMarkers.from_hits(marker_hits.contig_genes, marker_set.genes),
        )
    with steps.step("write"):
        outputs = write_bin_outputs(
            outdir,
            request.contigs,
            model_input.names.astype(str),
            model_input.contig_lengths,
            clustering,
            contig_features.names,
            sample_id=cluster_config.bin_prefix,
            write_fasta=request.write_fasta,
        )
        if marker_set is not None and marker_hits is not None:
            estimates = markers.bin_estimates(
                clustering.labels,
                marker_hits.contig_genes,
                marker_set.genes,
                len(clustering.bin_names),
            )
            for row, columns in zip(outputs["bins"], _marker_columns(estimates), strict=True):
                row.update(columns)
        write_bin_table(outdir / "bins.tsv", outputs["bins"])
    if request.plot:
        with steps.step("plot"):
            from vaebin import plot

            plot.latent_umap(
                outdir / "latent_umap.png",
                embedding.latent_means,
                clustering.labels,
                train_config.seed,
            )
    summary = {
        "vaebin_rs": __version__,
        "core": core_version,
        "python": platform.python_version(),
        "command": sys.argv,
        "inputs": {
            "contigs": str(request.contigs),
            "bams": [str(b) for b in request.bams],
            "depth_table": None if request.depth_table is None else str(request.depth_table),
            "model": None if request.model_path is None else str(request.model_path),
        },
        "parameters": {
            "encode": asdict(encode_config),
            "train": train_config.resolved(model_input.n_samples).to_dict(),
            "cluster": asdict(cluster_config),
            "threads": request.threads,
        },
        "seed": train_config.seed,
        "device": embedding.device,
        "counts": {
            "contigs": contig_features.n_contigs,
            "samples": len(contig_features.sample_names),
            "contigs_embedded": model_input.n_contigs,
            "contigs_too_short": model_input.n_short,
            "clusters": clustering.n_clusters,
            "noise": clustering.n_noise,
            "noise_reassigned": clustering.n_reassigned,
            "small_bins_dropped": clustering.n_small_bins_dropped,
            "bins": len(clustering.bin_names),
            "binned_contigs": outputs["binned_contigs"],
            "binned_bp": outputs["binned_bp"],
        },
        "bins": outputs["bins"],
        "cluster_steps": clustering.step_summaries(),
        "markers": marker_block,
        "final_loss": embedding.loss_history[-1] if embedding.loss_history else None,
        "steps": steps.steps,
        "seconds": round(time.perf_counter() - started, 3),
    }
    with io.atomic_text(outdir / "summary.json") as handle:
        json.dump(summary, handle, indent=2)
        handle.write("\n")
    return summary


# ---------------------------------------------------------------------------------------------
# the single-step commands: `featurize`, `coverage` and `cluster`


def run_featurize(
    contigs: Path,
    outdir: Path,
    kmer_size: int = 4,
    min_length: int = 0,
    bams: Sequence[Path] = (),
    depth_table: Path | None = None,
    vamb_projection: bool = False,
    threads: int | None = None,
) -> None:
    """`featurize`: composition (composition.npy, contigs.tsv) of `contigs` into `outdir`; with
    BAM files or a depth table the full features that `train` reads (plus depths.npy,
    samples.txt)."""
    if vamb_projection and kmer_size != 4:
        raise ParameterError("--vamb-projection needs -k 4")
    if bams and depth_table is not None:
        raise ParameterError("give the abundances either as --bam/--bamdir or as --depth")
    if bams or depth_table is not None:
        contig_features = load_contig_features(
            contigs, bams, depth_table, threads, kmer_size=kmer_size, min_length=min_length
        )
        save_features(outdir, contig_features)
        log.info(
            "%d contigs x %d composition columns, %d samples written to %s",
            contig_features.n_contigs,
            contig_features.composition.shape[1],
            len(contig_features.sample_names),
            outdir,
        )
        return
    started = time.perf_counter()
    result = features.composition(contigs, k=kmer_size, min_length=min_length, threads=threads)
    elapsed = time.perf_counter() - started
    if result.records_kept == 0:
        raise InputDataError(f"{contigs}: no record of at least {min_length} bp")
    io.remove_outputs(outdir, io.FEATURIZE_OUTPUTS)
    io.save_npy(outdir / "composition.npy", result.matrix)
    if vamb_projection:
        io.save_npy(
            outdir / "composition_vamb103.npy", features.project_tetranucleotides(result.matrix)
        )
    io.write_contig_table(outdir / "contigs.tsv", result.names, result.lengths)
    log.info(
        "%s: read %d records (%d bp); kept %d, skipped %d shorter than %d bp",
        contigs,
        result.records,
        result.bases,
        result.records_kept,
        result.records_too_short,
        min_length,
    )
    without_kmers = int(result.no_kmer_rows.sum())
    if without_kmers:
        log.warning(
            "%d records have no valid %d-mer (their rows are all zero)", without_kmers, kmer_size
        )
    log.info(
        "composition k=%d: %d x %d matrix in %.2f s (%.1f MB of sequence/s)",
        kmer_size,
        result.matrix.shape[0],
        result.matrix.shape[1],
        elapsed,
        result.bases / 1e6 / max(elapsed, 1e-9),
    )


def run_coverage(
    contigs: Path,
    bams: Sequence[Path],
    out: Path,
    options: features.CoverageOptions | None = None,
    threads: int | None = None,
) -> features.Coverage:
    """`coverage`: the depth of every contig in each BAM, written as a MetaBAT2 depth table."""
    from vaebin.depths import table_from_coverage
    from vaebin.io.depth_table import write_depth_table

    options = options or features.CoverageOptions()
    started = time.perf_counter()
    result = features.coverage(contigs, list(bams), threads=threads, **asdict(options))
    write_depth_table(out, table_from_coverage(result))
    for bam, counts in zip(bams, result.read_counts, strict=True):
        log.info(
            "%s: %d records; %d counted, %d secondary/QC-fail/duplicate, %d unmapped, "
            "%d under MAPQ %d, %d under identity %.2f",
            bam,
            counts["records"],
            counts["counted"],
            counts["filtered_flags"],
            counts["unmapped"],
            counts["low_mapq"],
            options.min_mapq,
            counts["low_identity"],
            options.min_identity,
        )
    log.info(
        "depths of %d contigs x %d samples written to %s in %.1f s",
        len(result.names),
        len(bams),
        out,
        time.perf_counter() - started,
    )
    return result


def depths_of_rows(features_dir: Path, names: np.ndarray, latent_dir: Path) -> np.ndarray:
    """Depth rows of the features in `features_dir` for the contigs `names` (latent order)."""
    contig_features = load_features(features_dir)
    rows, missing = _rows_of(names, contig_features.names)
    if missing.size:
        raise InputDataError(
            f"{features_dir}: no features for contig {str(missing[0])!r} of {latent_dir} "
            f"({missing.size} missing); pass the features the model was trained on"
        )
    return contig_features.depths[rows]


def run_cluster(
    latent_dir: Path,
    contigs: Path,
    outdir: Path,
    config: ClusterConfig,
    features_dir: Path | None = None,
    write_fasta: bool = True,
) -> dict[str, object]:
    """`cluster`: saved latent means (from `train`) into bins, written as `bin` writes them."""
    latent, names, lengths = load_embedding_table(latent_dir)
    depths = None
    if features_dir is not None:
        depths = depths_of_rows(features_dir, names, latent_dir)
    elif config.merge_same_depth or config.split_mixed_depth:
        log.warning(
            "no --features: the depth steps (--merge-same-depth, --split-mixed-depth) are "
            "skipped, so the bins can differ from those of `vaebin-rs bin`"
        )
    clustering = cluster_latent(latent, lengths, names, config, depths=depths)
    all_names = features.names_and_lengths(contigs)[0] if write_fasta else names
    outdir.mkdir(parents=True, exist_ok=True)
    outputs = write_bin_outputs(
        outdir, contigs, names, lengths, clustering, all_names, config.bin_prefix, write_fasta
    )
    log.info(
        "%d bins (%d contigs) written to %s",
        len(clustering.bin_names),
        outputs["binned_contigs"],
        outdir,
    )
    return outputs
