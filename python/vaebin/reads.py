"""Long-read binning without an assembly: read features (Rust) -> VAE -> HDBSCAN -> read bins.

Every read becomes one row: its low-k composition, one histogram per sample of how often its
k-mers occur in that sample's whole read set, and one abundance per sample from the same counts
(`vaebin._core.read_feature_arrays`, documented in rust/src/readcov.rs). The rows go through the
contig path's normalisation and VAE, with the abundances in the place of contig depths and the
histograms beside the composition. The VAE trains on a seeded sample of the reads and encodes
all of them; HDBSCAN clusters the longest reads and every other read joins the cluster most of
its nearest clustered reads are in (`vaebin.cluster`). Nothing here parses arguments or prints.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from vaebin import __version__, core_version, io
from vaebin.cluster import ClusterConfig, ClusterResult, ReadOverlaps, cluster_latent
from vaebin.encode import EncodeConfig, ModelInput, build_model_input
from vaebin.errors import InputDataError, InputFileError, ParameterError
from vaebin.pipeline import StepLog
from vaebin.train_config import READ_EPOCHS, TrainConfig

log = logging.getLogger("vaebin")

READ_FEATURE_FILES = (
    "composition.npy",
    "histograms.npy",
    "abundance.npy",
    "reads.npz",
    "samples.json",
)
GRAPH_FILE = "graph.npz"


@dataclass(frozen=True)
class ReadFeatureConfig:
    """Settings of the long-read featurization (see rust/src/readcov.rs)."""

    # k of the abundance k-mers (LRBinner's 15); 8 to 16.
    k: int = 15
    # k of the composition: 4 (136 canonical tetramers), or 3 (32, LRBinner's) for noisier reads.
    composition_k: int = 4
    histogram_bins: int = 32
    # Counts per histogram bin. Solid 15-mers of a genome at coverage c occur about
    # c * (1 - error)^15 times: 0.3 c at 8 % errors, so 2 resolves genomes down to a few x.
    bin_width: int = 2
    # 1 in this many k-mers (by hash) is counted and looked up: a power of two.
    sampling: int = 8
    # Reads shorter than this are left out of binning (their k-mers still count).
    min_read_len: int = 1000
    # Histograms over the k-mers other reads hold too (free of each read's error rate), or
    # over every k-mer (LRBinner's; the article preset).
    solid_histograms: bool = True
    # Which reads overlap which (rust/src/overlaps.rs): two reads sharing at least
    # `graph_min_shared` of 1 in `graph_sampling` of the sampled k-mers; k-mers held by more
    # than `graph_max_group` reads (repeats) link nothing; each read keeps its
    # `graph_max_neighbours` closest overlaps.
    overlap_graph: bool = True
    graph_sampling: int = 4
    graph_min_shared: int = 3
    graph_max_group: int = 64
    graph_max_neighbours: int = 16


@dataclass(frozen=True)
class OverlapGraph:
    """Overlapping reads in compressed rows: read r's are neighbours[offsets[r]:offsets[r+1]],
    with the number of graph k-mers they share."""

    offsets: np.ndarray
    neighbours: np.ndarray
    shared: np.ndarray

    @property
    def n_reads(self) -> int:
        """Number of reads (rows)."""
        return int(self.offsets.shape[0]) - 1

    def symmetric(self) -> object:
        """The graph as a symmetric scipy CSR matrix of shared k-mers (an overlap either read
        kept counts once; both kept, the larger)."""
        import scipy.sparse as sparse

        n = self.n_reads
        matrix = sparse.csr_matrix(
            (self.shared.astype(np.float32), self.neighbours, self.offsets.astype(np.int64)),
            shape=(n, n),
        )
        return matrix.maximum(matrix.T).tocsr()


@dataclass(frozen=True)
class ReadScaleConfig:
    """How much of a large read set trains the VAE and goes through HDBSCAN."""

    # The VAE trains on a seeded sample of at most this many reads and encodes all of them.
    max_train_reads: int = 200_000
    # Give the histograms to the VAE beside the composition (the article's and LRBinner's
    # features), and the abundances as depths. Without the histograms the tuning community real
    # set 1 gained near-complete genomes (3 samples, seed 1: 4 -> 9), but the held-out set 2
    # lost them (2 -> 1, ARI 0.70 -> 0.31), so they stay (benchmarks/RESULTS.md, "Long reads").
    use_histograms: bool = True
    use_abundance: bool = True
    # Rounds of averaging every read's latent position with its overlapping reads' (half its
    # own, half theirs weighted by shared k-mers) before HDBSCAN: a read then stands for a
    # longer stretch of its genome (and that stretch's depth) rather than a few noisy kbp.
    # Tuning set 1 (seed 1): 3 samples 4 -> 7 near-complete genomes (ARI 0.415 -> 0.446; 8
    # rounds 7 / 0.434, 16 rounds 4 / 0.277), 1 sample 2 -> 5 (0.530 -> 0.712); held out set 2:
    # 3 samples 2 -> 4 (0.704 -> 0.764), 1 sample 1 -> 1 (0.743 -> 0.738). 0: off.
    latent_smoothing: int = 4
    # The same averaging of the VAE's input features instead (0: off). Worse than smoothing
    # the latent positions on both sets (set 1, 3 samples: ARI 0.318; set 2, 1 sample: 1 -> 0
    # near-complete genomes) and nothing added beside it, so off.
    graph_smoothing: int = 0
    # Rounds in which a read takes the bin that holds over half of the votes of its overlaps
    # (`vote_over_graph`). It bins nearly every read but cost set 1 (1 sample) two near-complete
    # genomes (5 -> 3) and was level elsewhere, so off. 0: off.
    graph_vote_rounds: int = 0
    # Rounds of averaging (over overlaps sharing at least overlap_split_min_shared k-mers) of
    # the composition and log abundances in which `overlap_split` proposes its cuts (it also
    # proposes in the clustered points). Chosen with the step on tuning set 1 (8).
    split_view_smoothing: int = 8


def read_train_config(preset: str = "default", **overrides: object) -> TrainConfig:
    """Training settings for reads: `preset`'s, with READ_EPOCHS unless the preset or
    `overrides` set the epochs."""
    if overrides.get("epochs") is None:
        overrides.pop("epochs", None)
        if preset != "article":
            overrides["epochs"] = READ_EPOCHS
    if overrides.get("batch_size") is None:
        overrides.pop("batch_size", None)
    return TrainConfig.for_preset(preset, **overrides)


def read_cluster_config(**overrides: object) -> ClusterConfig:
    """The clustering settings for reads: the contig defaults where they carry over.

    Read bins are sized in read bases, HDBSCAN runs on the longest `max_hdbscan_contigs` reads,
    and the steps built on contig lengths and read-pair counts (a long contig as a bin of its
    own, depth mixtures of contigs) are off. So is the re-clustering of large clusters: a
    genome sequenced deeply gives a cluster of many times `min_bin_size` read bases whose
    density varies with the reads' error rates, and it cut such a genome in two (small
    simulated community, seed 1: 5 -> 6 near-complete genomes, ARI 0.59 -> 0.996 without it).
    """
    base = ClusterConfig(
        min_cluster_size=50,
        min_samples=10,
        min_bin_size=1_000_000,
        max_hdbscan_contigs=25_000,
        long_contig_bin_bp=None,
        recluster=False,
        split_mixed_depth=False,
        group_leftovers=False,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ReadFeatures:
    """Features of every read kept, samples one after the other, file order within one."""

    names: np.ndarray
    """numpy bytes array (S<width>) of read names."""
    lengths: np.ndarray
    sample_of_read: np.ndarray
    record_numbers: np.ndarray
    """1-based record number of each read in its file."""
    composition: np.ndarray
    histograms: np.ndarray
    """float32 reads x (samples x bins), sample by sample."""
    abundance: np.ndarray
    """float32 reads x samples."""
    solid_fraction: np.ndarray
    kmers: np.ndarray
    sample_names: list[str]
    inputs: list[str]
    stats: list[dict[str, object]] = field(default_factory=list)
    config: dict[str, object] = field(default_factory=dict)
    graph: OverlapGraph | None = None

    @property
    def n_reads(self) -> int:
        """Number of reads kept."""
        return int(self.lengths.shape[0])


def sample_names_of(paths: list[Path]) -> list[str]:
    """Sample names from read file names (without .gz and the FASTA/FASTQ suffix), unique."""
    names = []
    for path in paths:
        name = path.name
        for suffix in (".gz", ".bgz", ".fastq", ".fq", ".fasta", ".fa", ".fna"):
            name = name.removesuffix(suffix)
        names.append(name or path.name)
    if len(set(names)) < len(names):
        names = [f"{name}#{i + 1}" for i, name in enumerate(names)]
    return names


def compute_read_features(
    paths: list[Path], config: ReadFeatureConfig | None = None, threads: int | None = None
) -> ReadFeatures:
    """Features of the reads of each file in `paths` (one file per sample)."""
    from vaebin import _core

    config = config or ReadFeatureConfig()
    paths = [Path(p) for p in paths]
    if not paths:
        raise ParameterError("give at least one read file")
    if len({p.resolve() for p in paths}) < len(paths):
        raise ParameterError("the same read file is given twice")
    arrays = _core.read_feature_arrays(
        [str(p) for p in paths],
        k=config.k,
        composition_k=config.composition_k,
        bins=config.histogram_bins,
        bin_width=config.bin_width,
        sampling=config.sampling,
        min_length=config.min_read_len,
        solid_histograms=config.solid_histograms,
        graph=config.overlap_graph,
        graph_sampling=config.graph_sampling,
        min_shared=config.graph_min_shared,
        max_group=config.graph_max_group,
        max_neighbours=config.graph_max_neighbours,
        threads=threads,
    )
    graph = None
    if config.overlap_graph:
        graph = OverlapGraph(
            offsets=arrays["graph_offsets"],
            neighbours=arrays["graph_neighbours"],
            shared=arrays["graph_shared"],
        )
    names = np.frombuffer(arrays["names"], dtype=f"S{arrays['name_width']}")
    _check_unique_names(names, np.asarray(arrays["samples"]), paths)
    return ReadFeatures(
        names=names,
        lengths=arrays["lengths"],
        sample_of_read=arrays["samples"],
        record_numbers=arrays["record_numbers"],
        composition=arrays["composition"],
        histograms=arrays["histograms"],
        abundance=arrays["abundance"],
        solid_fraction=arrays["solid_fraction"],
        kmers=arrays["kmers"],
        sample_names=sample_names_of(paths),
        inputs=[str(p) for p in paths],
        stats=[
            {
                **s,
                "table_bytes": arrays["table_bytes"],
                "seconds_profiles": arrays["seconds_profiles"],
                "seconds_graph": arrays.get("seconds_graph", 0.0),
            }
            for s in arrays["stats"]
        ],
        config=asdict(config),
        graph=graph,
    )


def _check_unique_names(names: np.ndarray, samples: np.ndarray, paths: list[Path]) -> None:
    """Read names must tell reads apart across samples too (read_clusters.tsv holds names)."""
    order = np.argsort(names, kind="stable")
    repeated = np.flatnonzero(names[order][1:] == names[order][:-1])
    if repeated.size:
        first, second = order[repeated[0]], order[repeated[0] + 1]
        raise InputDataError(
            f"{paths[samples[second]]}: read name '{names[second].decode()}' is also in "
            f"{paths[samples[first]]}; read names must be unique across samples"
        )


def save_read_features(directory: Path, features: ReadFeatures) -> None:
    """Write the features as .npy/.npz files (reloaded memory-mapped by `load_read_features`)."""
    directory.mkdir(parents=True, exist_ok=True)
    io.save_npy(directory / "composition.npy", features.composition)
    io.save_npy(directory / "histograms.npy", features.histograms)
    io.save_npy(directory / "abundance.npy", features.abundance)
    with io.atomic_path(directory / "reads.npz") as temporary, open(temporary, "wb") as handle:
        np.savez(
            handle,
            names=features.names,
            lengths=features.lengths,
            sample_of_read=features.sample_of_read,
            record_numbers=features.record_numbers,
            solid_fraction=features.solid_fraction,
            kmers=features.kmers,
        )
    graph_path = directory / GRAPH_FILE
    if features.graph is not None:
        with io.atomic_path(graph_path) as temporary, open(temporary, "wb") as handle:
            np.savez(
                handle,
                offsets=features.graph.offsets,
                neighbours=features.graph.neighbours,
                shared=features.graph.shared,
            )
    elif graph_path.exists():
        graph_path.unlink()
    with io.atomic_text(directory / "samples.json") as handle:
        json.dump(
            {
                "sample_names": features.sample_names,
                "inputs": features.inputs,
                "stats": features.stats,
                "config": features.config,
            },
            handle,
            indent=2,
        )
        handle.write("\n")


def load_read_features(directory: Path) -> ReadFeatures:
    """Read what `save_read_features` wrote; the large matrices are memory-mapped."""
    for name in READ_FEATURE_FILES:
        if not (directory / name).is_file():
            raise InputFileError(f"{directory / name}: no such file (not a read features folder)")
    meta = json.loads((directory / "samples.json").read_text(encoding="utf-8"))
    with np.load(directory / "reads.npz") as reads:
        columns = {name: reads[name] for name in reads.files}
    graph = None
    if (directory / GRAPH_FILE).is_file():
        with np.load(directory / GRAPH_FILE) as stored:
            graph = OverlapGraph(
                offsets=stored["offsets"], neighbours=stored["neighbours"], shared=stored["shared"]
            )
    return ReadFeatures(
        graph=graph,
        composition=np.load(directory / "composition.npy", mmap_mode="r"),
        histograms=np.load(directory / "histograms.npy", mmap_mode="r"),
        abundance=np.load(directory / "abundance.npy", mmap_mode="r"),
        sample_names=list(meta["sample_names"]),
        inputs=list(meta["inputs"]),
        stats=list(meta["stats"]),
        config=dict(meta["config"]),
        **columns,
    )


def read_model_input(
    features: ReadFeatures, scale: ReadScaleConfig | None = None, stats: object = None
) -> ModelInput:
    """The VAE input of the reads: abundances as depths, composition and histograms side by
    side (each column standardised), weights from the read lengths."""
    scale = scale or ReadScaleConfig()
    blocks = [np.asarray(features.composition, dtype=np.float32)]
    if scale.use_histograms:
        blocks.append(np.asarray(features.histograms, dtype=np.float32))
    depths = (
        np.asarray(features.abundance, dtype=np.float32)
        if scale.use_abundance
        else np.ones((features.n_reads, 1), dtype=np.float32)
    )
    if scale.graph_smoothing and features.graph is not None:
        widths = [block.shape[1] for block in blocks]
        smoothed = smooth_over_graph(
            np.concatenate([*blocks, depths], axis=1), features.graph, scale.graph_smoothing
        )
        cuts = np.cumsum(widths)
        blocks = np.split(smoothed[:, : cuts[-1]], cuts[:-1], axis=1)
        depths = smoothed[:, cuts[-1] :]
    return build_model_input(
        np.concatenate(blocks, axis=1),
        depths,
        np.asarray(features.lengths, dtype=np.int64),
        features.names,
        EncodeConfig(min_contig_len=0),
        stats=stats,  # type: ignore[arg-type]
    )


def smooth_over_graph(values: np.ndarray, graph: OverlapGraph, rounds: int) -> np.ndarray:
    """`rounds` times, every row becomes half itself and half the mean of its overlapping
    reads' rows weighted by shared k-mers (rows without overlaps stay as they are)."""
    return _smooth(values, graph.symmetric(), rounds)


def _smooth(values: np.ndarray, matrix: object, rounds: int) -> np.ndarray:
    """`smooth_over_graph` over a symmetric CSR matrix of overlap weights."""
    import scipy.sparse as sparse

    degree = np.asarray(matrix.sum(axis=1)).ravel()  # type: ignore[attr-defined]
    has = degree > 0
    scale = np.where(has, 0.5 / np.where(has, degree, 1.0), 0.0)
    step = sparse.diags(scale) @ matrix
    own = np.where(has, 0.5, 1.0)[:, None]
    out = np.asarray(values, dtype=np.float32)
    for _ in range(rounds):
        out = (own * out + step @ out).astype(np.float32)
    return out


def split_views(
    features: ReadFeatures, points: np.ndarray, scale: ReadScaleConfig, config: ClusterConfig
) -> ReadOverlaps | None:
    """The overlap graph and the views `overlap_split` cuts bins in: composition and log
    abundances averaged over `split_view_smoothing` rounds of overlaps sharing at least
    `overlap_split_min_shared` k-mers, and the clustered points. None without a graph or with
    the step off."""
    if features.graph is None or not config.overlap_split:
        return None
    matrix = features.graph.symmetric()
    strong = matrix.copy()  # type: ignore[attr-defined]
    strong.data[strong.data < config.overlap_split_min_shared] = 0
    strong.eliminate_zeros()
    rounds = scale.split_view_smoothing
    views = (
        _smooth(features.composition, strong, rounds),
        _smooth(np.log1p(features.abundance), strong, rounds),
        np.asarray(points, dtype=np.float32),
    )
    return ReadOverlaps(matrix, views)


def vote_over_graph(labels: np.ndarray, graph: OverlapGraph, rounds: int) -> np.ndarray:
    """`rounds` times, every read takes the bin that holds over half of the votes of its
    overlapping reads, each weighted by the k-mers it shares, and of itself, weighted as its
    largest overlap (it overlaps itself more than any other read). Reads outside bins (-1) get
    no vote of their own, so they join the bin most of their binned overlaps are in."""
    import scipy.sparse as sparse

    matrix = graph.symmetric()
    own_weight = matrix.max(axis=1).toarray().ravel()  # type: ignore[attr-defined]
    labels = np.asarray(labels).copy()
    n_bins = int(labels.max()) + 1 if labels.size else 0
    rows = np.arange(labels.size)
    for _ in range(rounds if n_bins else 0):
        binned = np.flatnonzero(labels >= 0)
        member = sparse.csr_matrix(
            (np.ones(binned.size, dtype=np.float32), (binned, labels[binned])),
            shape=(labels.size, n_bins),
        )
        votes = (matrix @ member).toarray()  # type: ignore[operator]
        votes[binned, labels[binned]] += own_weight[binned]
        best = votes.argmax(axis=1)
        change = (votes[rows, best] > 0.5 * votes.sum(axis=1)) & (best != labels)
        if not change.any():
            break
        labels[change] = best[change]
    return labels


def graph_vote(
    clustering: ClusterResult, graph: OverlapGraph, rounds: int
) -> tuple[ClusterResult, int]:
    """`clustering` after `vote_over_graph`, bins left empty dropped; with the reads moved."""
    labels = vote_over_graph(clustering.labels, graph, rounds)
    moved = int((labels != clustering.labels).sum())
    kept = np.flatnonzero(np.bincount(labels[labels >= 0], minlength=len(clustering.bin_names)))
    renumber = np.full(len(clustering.bin_names), -1, dtype=np.int64)
    renumber[kept] = np.arange(kept.size)
    labels = np.where(labels >= 0, renumber[np.maximum(labels, 0)], -1)
    return (
        replace(
            clustering,
            labels=labels,
            bin_names=[clustering.bin_names[i] for i in kept],
            n_noise=int((labels < 0).sum()),
        ),
        moved,
    )


def _rows(model_input: ModelInput, rows: np.ndarray) -> ModelInput:
    """The rows `rows` of a model input (for training on a sample of the reads)."""
    return replace(
        model_input,
        names=model_input.names[rows],
        contig_lengths=model_input.contig_lengths[rows],
        abundance=model_input.abundance[rows],
        total_abundance=model_input.total_abundance[rows],
        composition=model_input.composition[rows],
        weights=model_input.weights[rows],
        kept=np.ones(rows.size, dtype=bool),
        n_short=0,
    )


def training_rows(n_reads: int, max_reads: int, seed: int) -> np.ndarray:
    """Seeded sample of at most `max_reads` read indices, in read order."""
    if n_reads <= max_reads:
        return np.arange(n_reads)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_reads, size=max_reads, replace=False))


@dataclass(frozen=True)
class ReadBinRequest:
    """Everything `run_bin_reads` needs besides the per-stage configurations."""

    reads: tuple[Path, ...]
    outdir: Path
    threads: int | None = None
    write_reads: bool = True
    plot: bool = False
    truth: Path | None = None


def run_bin_reads(
    request: ReadBinRequest,
    feature_config: ReadFeatureConfig,
    scale: ReadScaleConfig,
    train_config: object,
    cluster_config: ClusterConfig,
) -> dict[str, object]:
    """Bin long reads end to end; returns the summary also written to summary.json."""
    from vaebin.train import encode_latent, save_model, train_vae

    outdir = request.outdir
    outdir.mkdir(parents=True, exist_ok=True)
    # summary.json, written last, marks a complete run (as in `pipeline.run_bin`).
    io.remove_outputs(outdir, ["summary.json"])
    steps = StepLog()
    started = time.perf_counter()
    with steps.step("features"):
        features = compute_read_features(list(request.reads), feature_config, request.threads)
        save_read_features(outdir / "features", features)
    log.info(
        "%d reads of at least %d bp (%d bp) from %d samples",
        features.n_reads,
        feature_config.min_read_len,
        int(features.lengths.sum()),
        len(features.sample_names),
    )
    with steps.step("train"):
        model_input = read_model_input(features, scale)
        rows = training_rows(model_input.n_contigs, scale.max_train_reads, train_config.seed)  # type: ignore[attr-defined]
        trained = train_vae(_rows(model_input, rows), train_config)  # type: ignore[arg-type]
        latent = encode_latent(trained.model, model_input)
        save_model(outdir / "model.pt", trained.model)
        io.save_npy(outdir / "latent.npy", latent)
    with steps.step("cluster"):
        points = latent
        if scale.latent_smoothing and features.graph is not None:
            points = smooth_over_graph(latent, features.graph, scale.latent_smoothing)
        clustering = cluster_latent(
            points,
            model_input.contig_lengths,
            model_input.names,
            cluster_config,
            depths=features.abundance if scale.use_abundance else None,
            overlaps=split_views(features, points, scale, cluster_config),
        )
        moved = 0
        if scale.graph_vote_rounds and features.graph is not None:
            clustering, moved = graph_vote(clustering, features.graph, scale.graph_vote_rounds)
    with steps.step("write"):
        outputs = write_read_outputs(outdir, features, clustering, request.write_reads)
    if request.plot:
        with steps.step("plot"):
            _plot(outdir, latent, clustering, features, request.truth, train_config.seed)  # type: ignore[attr-defined]
    samples = [
        {"name": name, "path": path, **stats}
        for name, path, stats in zip(
            features.sample_names, features.inputs, features.stats, strict=True
        )
    ]
    summary = {
        "vaebin_rs": __version__,
        "core": core_version,
        "python": platform.python_version(),
        "command": sys.argv,
        "mode": "reads",
        "inputs": {"reads": [str(p) for p in request.reads]},
        "samples": samples,
        "parameters": {
            "features": asdict(feature_config),
            "scale": asdict(scale),
            "train": train_config.resolved(model_input.n_samples).to_dict(),  # type: ignore[attr-defined]
            "cluster": asdict(cluster_config),
            "threads": request.threads,
        },
        "seed": train_config.seed,  # type: ignore[attr-defined]
        "device": trained.device,
        "counts": {
            "reads": int(sum(int(s["records"]) for s in features.stats)),  # type: ignore[call-overload]
            "reads_kept": features.n_reads,
            "reads_too_short": int(sum(int(s["records_too_short"]) for s in features.stats)),  # type: ignore[call-overload]
            "bases_kept": int(features.lengths.sum()),
            "training_reads": int(rows.size),
            "hdbscan_reads": int(min(features.n_reads, cluster_config.max_hdbscan_contigs or 0))
            or features.n_reads,
            "clusters": clustering.n_clusters,
            "noise": clustering.n_noise,
            "small_bins_dropped": clustering.n_small_bins_dropped,
            "bins": len(clustering.bin_names),
            "binned_reads": outputs["binned_reads"],
            "binned_bases": outputs["binned_bases"],
            "graph_edges": int(features.graph.neighbours.size) if features.graph else None,
            "reads_moved_by_graph_vote": moved,
        },
        "bins": outputs["bins"],
        "cluster_steps": clustering.step_summaries(),
        "final_loss": trained.loss_history[-1] if trained.loss_history else None,
        "steps": steps.steps,
        "seconds": round(time.perf_counter() - started, 3),
    }
    with io.atomic_text(outdir / "summary.json") as handle:
        json.dump(summary, handle, indent=2)
        handle.write("\n")
    return summary


def write_read_outputs(
    outdir: Path, features: ReadFeatures, clustering: ClusterResult, write_reads: bool = True
) -> dict[str, object]:
    """read_clusters.tsv (clustername, readname) and bins/<bin>.fq.gz (or .fa.gz) plus
    unbinned.fq.gz (every read not in a bin, short ones included)."""
    from vaebin import _core
    from vaebin.io.clusters import write_clusters

    labels = clustering.labels
    binned = np.flatnonzero(labels >= 0)
    binned = binned[np.argsort(labels[binned], kind="stable")]
    bin_names = np.asarray(clustering.bin_names, dtype=object)
    row_bins = bin_names[labels[binned]].astype(str)
    row_reads = features.names[binned].astype(str)
    write_clusters(outdir / "read_clusters.tsv", row_bins, row_reads, member_column="readname")
    lengths = np.asarray(features.lengths, dtype=np.int64)
    bin_bases = np.bincount(labels[binned], weights=lengths[binned], minlength=len(bin_names))
    bin_reads = np.bincount(labels[binned], minlength=len(bin_names))
    if write_reads:
        # Bins keep the qualities when every input is FASTQ; otherwise they are FASTA.
        fastq = all(bool(stats.get("fastq")) for stats in features.stats)
        suffix = ".fq.gz" if fastq else ".fa.gz"
        bins_dir = outdir / "bins"
        bins_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*bins_dir.glob("*.fq.gz"), *bins_dir.glob("*.fa.gz")]:
            stale.unlink()
        outputs = [bins_dir / f"{name}{suffix}" for name in clustering.bin_names]
        outputs.append(outdir / f"unbinned{suffix}")
        unbinned = len(clustering.bin_names)
        per_file = []
        for sample, stats in enumerate(features.stats):
            of_record = np.full(int(stats["records"]), unbinned, dtype=np.uint32)  # type: ignore[call-overload]
            rows = np.flatnonzero(features.sample_of_read == sample)
            row_labels = labels[rows]
            of_record[features.record_numbers[rows] - 1] = np.where(
                row_labels >= 0, row_labels, unbinned
            ).astype(np.uint32)
            per_file.append(of_record)
        _core.write_read_bins(features.inputs, per_file, [str(p) for p in outputs], fastq)
    return {
        "bins": [
            {"name": str(name), "reads": int(n), "bases": int(bp)}
            for name, n, bp in zip(clustering.bin_names, bin_reads, bin_bases, strict=True)
        ],
        "binned_reads": int(binned.size),
        "binned_bases": int(lengths[binned].sum()),
    }


def _plot(
    outdir: Path,
    latent: np.ndarray,
    clustering: ClusterResult,
    features: ReadFeatures,
    truth: Path | None,
    seed: int,
) -> None:
    """latent_umap.png of up to 10,000 reads, coloured by the true genome when a truth is given,
    else by bin."""
    from vaebin import plot
    from vaebin.io.cami import read_cami_binning

    rows = training_rows(latent.shape[0], 10_000, seed)
    labels = clustering.labels[rows]
    if truth is not None:
        genome_of = read_cami_binning(truth)
        genomes = np.array(
            [genome_of.get(name, "") for name in features.names[rows].astype(str)], dtype=object
        )
        _, labels = np.unique(genomes.astype(str), return_inverse=True)
    plot.latent_umap(outdir / "latent_umap.png", latent[rows], labels, seed)
