"""Cluster latent means into bins with HDBSCAN.

Noise points are left unbinned unless they lie clearly inside a cluster's own spread; bins
smaller than `min_bin_size` bp are dropped. For cross-assemblies (contigs of several samples
assembled separately and binned together, VAMB's multi-split), clusters are found in the shared
latent space and then split per sample, so each sample gets its own bins.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vaebin.errors import InputDataError, ParameterError

METRICS = ("cosine", "euclidean")
SELECTION_METHODS = ("eom", "leaf")
# Noise reassignment works on blocks of this many noise points at a time to bound memory.
_REASSIGN_CHUNK = 4096
# Neighbour votes compute distances in blocks of at most this many (query, anchor) pairs.
_VOTE_BLOCK_PAIRS = 1 << 23
# Grouping looks at no more than this many noise contigs (the longest) and, per cluster, at its
# this many longest members for the within-genome distance (the same number of members measure
# a re-clustering part's spread).
_GROUP_MAX_CONTIGS = 4000
_LONGEST_MEMBERS = 20


@dataclass(frozen=True)
class ClusterConfig:
    """Settings of the clustering stage."""

    min_cluster_size: int = 10
    # Neighbours defining a core point; None means min_cluster_size. A small value let HDBSCAN
    # keep close genomes apart (measured: benchmarks/dev/NOTES.md).
    min_samples: int | None = 3
    # "cosine" compares directions of latent vectors (rows are L2-normalised before HDBSCAN).
    metric: str = "cosine"
    cluster_selection_method: str = "eom"
    min_bin_size: int = 200_000
    # Give a noise contig to the nearest cluster when it lies within that cluster's own spread.
    reassign_noise: bool = False
    # Quantile of members' distances to their centroid that defines a cluster's spread.
    reassign_quantile: float = 0.9
    # HDBSCAN noise contigs join a cluster of at least min_bin_size bp (clusters too small to
    # be bins stay apart: they may be small genomes or plasmids) when that cluster holds at least
    # leftover_agreement of their leftover_neighbours nearest members of such clusters; contigs
    # between bins stay unbinned. Low-coverage genomes spread out in the latent space: HDBSCAN
    # keeps a dense core and calls the rest noise, which cost a real Methanosarcina genome 33 %
    # of its bp (benchmarks/RESULTS.md, "Binning on real genomes"); VAMB and MetaBAT2 bin nearly
    # every contig. Measured: benchmarks/dev/NOTES.md, "Noise contigs".
    assign_leftovers: bool = True
    leftover_neighbours: int = 5
    leftover_agreement: int = 4
    # HDBSCAN's cost grows about as n^2 (Prim's MST on 32-dimensional latents: 10,000 contigs
    # 2 CPU-s, 40,000 contigs 37 CPU-s). With more contigs than this, HDBSCAN (and the
    # re-clustering) runs on the longest ones, whose latent positions rest on the most k-mers
    # and reads, and every other contig joins the cluster that leftover_agreement of its
    # leftover_neighbours nearest clustered contigs are in, else it is noise. None: no limit.
    max_hdbscan_contigs: int | None = 50_000
    # HDBSCAN cannot make a cluster of fewer than min_cluster_size contigs, so a genome assembled
    # into a few long contigs is noise (and each contig over long_contig_bin_bp a bin of its
    # own). Before the vote, noise contigs are grouped by single linkage within a distance taken
    # from the data (the median, over clusters, of the median distance between a cluster's
    # longest members); groups of at least min_bin_size bp become bins. Measured: a real
    # Chlamydia genome in 5 contigs and a Buchnera in 2 became whole bins instead of parts of
    # others (benchmarks/dev/NOTES.md, "Genomes in a few contigs").
    group_leftovers: bool = True
    # An unbinned contig at least this long becomes a bin of its own (None: never); bins are
    # still subject to min_bin_size.
    long_contig_bin_bp: int | None = 200_000
    # Multi-split: contig names are <sample><separator><contig>; None disables splitting.
    split_separator: str | None = None
    bin_prefix: str = "bin"
    # Threads the clustering may use. HDBSCAN runs Prim's algorithm, which is serial and
    # cheaper in CPU than the parallel Boruvka variant on latent spaces (see _hdbscan_fit), so
    # labels never depend on this; kept so callers state their budget in one place.
    threads: int = 1
    # Run HDBSCAN again inside each large cluster and split it when it holds two or more dense
    # parts of at least min_bin_size bp each: eom's stability criterion can keep close genomes
    # (strains, related species) in one cluster that density within the cluster separates.
    recluster: bool = True
    # ... but only parts that lie this many times farther apart than each part's own contigs
    # do (median distance between the longest members of two parts over the larger median
    # distance within one): a large genome can show two density modes, its parts then lie only
    # 1.5-1.8x apart, separate genomes 3.5-9x (benchmarks/dev/NOTES.md, "Re-clustering").
    # Parts closer than this are merged again; 0 accepts every split.
    split_min_separation: float = 2.0
    # When HDBSCAN finds no two dense parts in a cluster, look for groups of contigs linked
    # (single linkage) within the within-genome distance of `group_leftovers` instead: a genome
    # in a few long contigs that HDBSCAN put in a neighbour's cluster.
    split_linked_groups: bool = True
    # Join two clusters that lie close in the latent space (less than merge_max_separation
    # times farther apart than their own longest contigs) and have the same depth in every
    # sample (length-weighted median depths within merge_max_log2_depth_ratio in log2): HDBSCAN
    # can cut a low-coverage or large genome in two pure clusters whose depths agree within
    # 3 %, while clusters of different genomes as close differ 2.4-fold or more in some sample
    # (benchmarks/dev/NOTES.md, "CUDA against CPU training"). Needs the depths and at least
    # depth_min_samples samples (one depth cannot tell genomes apart). Over 40 seeds of real
    # set 1, 10 of real set 2, the simulated benchmark and the dev sets it lowered neither the
    # near-complete genomes nor the ARI (beyond 0.0005) of any seed.
    merge_same_depth: bool = True
    merge_max_separation: float = 2.5
    merge_max_log2_depth_ratio: float = 0.3
    # Once every contig has its bin, split a bin in two when its contigs form two populations
    # whose depths cross: each part at least split_min_depth_crossing (log2) deeper than the
    # other in some sample. Two genomes of one species (strains) share a latent position but
    # not their abundances; a genome and the contigs it shares with a strain (collapsed: depth
    # the sum of both, never lower) or its plasmids (depth scaled) never cross. The parts come
    # from a two-component mixture of the contigs' reads over the samples (overdispersion
    # measured and allowed for); the split needs split_min_confidence of the bin's bp assigned
    # with posterior > 0.95 (noise splits of single genomes: 0.1-0.4, E. coli 536 against K-12
    # in real set 1: 0.74), parts of at least min_bin_size bp and min_cluster_size contigs,
    # and depth_min_samples samples. Real set 1: 13.0 -> 13.8 near-complete genomes over 40
    # seeds, real set 2: +0.3 over 10 (benchmarks/dev/NOTES.md, "Strains by crossing depths").
    split_mixed_depth: bool = True
    split_min_depth_crossing: float = 0.5
    split_min_confidence: float = 0.6
    depth_min_samples: int = 3


@dataclass(frozen=True)
class ClusterResult:
    """Bin of every contig: `labels[i]` indexes `bin_names`, -1 means unbinned."""

    labels: np.ndarray
    bin_names: list[str]
    n_clusters: int
    n_noise: int
    n_reassigned: int
    n_small_bins_dropped: int

    def contig_bins(self, names: Sequence[str] | np.ndarray) -> dict[str, str]:
        """Mapping contig name -> bin name for the binned contigs."""
        binned = np.flatnonzero(self.labels >= 0)
        bin_names = np.asarray(self.bin_names, dtype=object)
        contig_names = np.asarray(names, dtype=object)
        return dict(zip(contig_names[binned], bin_names[self.labels[binned]], strict=True))


def _validate(config: ClusterConfig) -> None:
    if config.metric not in METRICS:
        raise ParameterError(
            f"unknown metric {config.metric!r}; choose one of {', '.join(METRICS)}"
        )
    if config.cluster_selection_method not in SELECTION_METHODS:
        raise ParameterError(
            f"unknown cluster selection method {config.cluster_selection_method!r}; "
            f"choose one of {', '.join(SELECTION_METHODS)}"
        )
    if config.split_min_separation < 0:
        raise ParameterError("split_min_separation must not be negative")
    if config.split_min_depth_crossing < 0:
        raise ParameterError("split_min_depth_crossing must not be negative")
    if not 0 <= config.split_min_confidence <= 1:
        raise ParameterError("split_min_confidence must be in [0, 1]")
    if config.min_cluster_size < 2:
        raise ParameterError("min_cluster_size must be at least 2")
    if config.min_samples is not None and config.min_samples < 1:
        raise ParameterError("min_samples must be at least 1")
    if not 0 < config.reassign_quantile <= 1:
        raise ParameterError("reassign_quantile must be in (0, 1]")
    if config.split_separator == "":
        raise ParameterError("the split separator must not be empty")
    if config.max_hdbscan_contigs is not None and config.max_hdbscan_contigs < 2:
        raise ParameterError("max_hdbscan_contigs must be at least 2 (or None for no limit)")
    if not config.leftover_neighbours / 2 < config.leftover_agreement <= config.leftover_neighbours:
        raise ParameterError(
            "leftover_agreement must be a majority of leftover_neighbours (more than half, "
            "at most all)"
        )


def _prepare_points(latent_means: np.ndarray, metric: str) -> np.ndarray:
    points = np.asarray(latent_means, dtype=np.float64)
    if metric == "cosine":
        # On unit vectors squared euclidean distance is 2 - 2 cos, so euclidean HDBSCAN on
        # normalised rows orders neighbours exactly as cosine distance does.
        norms = np.linalg.norm(points, axis=1, keepdims=True)
        points = points / np.where(norms > 0, norms, 1.0)
    return points


def _hdbscan_fit(points: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """HDBSCAN labels of `points` as the library gives them (-1: noise)."""
    import hdbscan

    n_points = points.shape[0]
    min_cluster_size = min(config.min_cluster_size, n_points)
    min_samples = min(config.min_samples or min_cluster_size, n_points - 1)
    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=max(1, min_samples),
        metric="euclidean",
        cluster_selection_method=config.cluster_selection_method,
        # Prim's algorithm over a k-d tree: the exact minimum spanning tree (reproducible
        # labels) in O(n) memory; on 32-dimensional latent spaces it needs 2.5x less CPU than
        # the Boruvka k-d tree the library picks below 60 dimensions (96 vs 37 CPU-s for 40,000
        # points), which degrades in this many dimensions.
        algorithm="prims_kdtree",
        approx_min_span_tree=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(clusterer.fit_predict(points), dtype=np.int64)


def _hdbscan_labels(points: np.ndarray, config: ClusterConfig) -> np.ndarray:
    n_points = points.shape[0]
    labels = _hdbscan_fit(points, config)
    if labels.max(initial=-1) < 0:
        # HDBSCAN never reports the whole data set as one cluster; when it finds no split at
        # all, the contigs form one density blob (e.g. a single genome): bin them together.
        labels = np.zeros(n_points, dtype=np.int64)
    return labels


def _nearest_centroid(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    distances = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(distances, axis=1)


def _split_clusters(
    points: np.ndarray, labels: np.ndarray, lengths: np.ndarray, config: ClusterConfig
) -> np.ndarray:
    """Split clusters whose members form several separate parts of bin size: dense parts when
    the cluster is clustered alone, or else groups linked within a genome's own spread."""
    result = labels.copy()
    next_label = int(labels.max(initial=-1)) + 1
    threshold = _within_genome_distance(points, labels, lengths)
    for cluster in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == cluster)
        if members.size < 2 or lengths[members].sum() < 2 * config.min_bin_size:
            continue
        parts = _dense_parts(points, members, lengths, config)
        if len(parts) < 2 and config.split_linked_groups and threshold > 0:
            parts = _linked_parts(points, members, lengths, threshold, config.min_bin_size)
        if len(parts) < 2:
            continue
        groups = _separated_groups(parts, points, lengths, config)
        if len(groups) < 2:
            continue
        # Every member stays binned: each goes to the nearest group.
        centroids = np.array([points[group].mean(axis=0) for group in groups])
        part_of_member = _nearest_centroid(points[members], centroids)
        for number, group in enumerate(groups):
            part_of_member[np.isin(members, group)] = number
        new_labels = np.concatenate([[cluster], next_label + np.arange(len(groups) - 1)])
        result[members] = new_labels[part_of_member]
        next_label += len(groups) - 1
    return result


def _dense_parts(
    points: np.ndarray, members: np.ndarray, lengths: np.ndarray, config: ClusterConfig
) -> list[np.ndarray]:
    """HDBSCAN clusters of at least min_bin_size bp among a cluster's members."""
    if members.size < 2 * config.min_cluster_size:
        return []
    sub = _hdbscan_fit(points[members], config)
    parts = [members[sub == part] for part in np.unique(sub[sub >= 0])]
    return [part for part in parts if lengths[part].sum() >= config.min_bin_size]


def _linked_parts(
    points: np.ndarray,
    members: np.ndarray,
    lengths: np.ndarray,
    threshold: float,
    min_bin_size: int,
) -> list[np.ndarray]:
    """Single-linkage groups, within `threshold`, of at least two contigs and min_bin_size bp
    among a cluster's longest members: a genome in fewer contigs than min_cluster_size that
    HDBSCAN merged into a neighbour's cluster. (A lone contig has no spread to compare with.)"""
    from scipy.cluster.hierarchy import fcluster, linkage

    longest = members[np.argsort(-lengths[members], kind="stable")[:_GROUP_MAX_CONTIGS]]
    if longest.size < 2:
        return []
    groups = fcluster(linkage(points[longest], method="single"), t=threshold, criterion="distance")
    parts = [np.sort(longest[groups == group]) for group in np.unique(groups)]
    return [part for part in parts if part.size >= 2 and lengths[part].sum() >= min_bin_size]


def _separated_groups(
    parts: list[np.ndarray], points: np.ndarray, lengths: np.ndarray, config: ClusterConfig
) -> list[np.ndarray]:
    """Join parts that lie less than `split_min_separation` times farther apart than their own
    contigs do (transitively); the member rows of each resulting group."""
    longest = [part[np.argsort(-lengths[part], kind="stable")[:_LONGEST_MEMBERS]] for part in parts]
    within = [_median_distance(points[rows]) for rows in longest]

    def close(first: int, second: int) -> bool:
        between = _median_distance(points[longest[first]], points[longest[second]])
        return between < config.split_min_separation * max(within[first], within[second])

    roots = _joined_roots(len(parts), close)
    return [
        np.sort(np.concatenate([parts[i] for i in range(len(parts)) if roots[i] == r]))
        for r in sorted(set(roots))
    ]


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _merge_same_depth(
    points: np.ndarray,
    labels: np.ndarray,
    lengths: np.ndarray,
    depths: np.ndarray,
    config: ClusterConfig,
) -> np.ndarray:
    """Join clusters that lie close and have the same depth profile (see ClusterConfig)."""
    clusters = np.unique(labels[labels >= 0])
    longest, spread, profile = [], [], []
    for cluster in clusters:
        members = np.flatnonzero(labels == cluster)
        longest.append(members[np.argsort(-lengths[members], kind="stable")[:_LONGEST_MEMBERS]])
        spread.append(_median_distance(points[longest[-1]]))
        weights = lengths[members].astype(np.float64)
        profile.append(
            np.array(
                [_weighted_median(depths[members, s], weights) for s in range(depths.shape[1])]
            )
        )

    def same_genome(first: int, second: int) -> bool:
        if spread[first] == 0 or spread[second] == 0:
            return False
        ratio = np.log2((profile[first] + 0.05) / (profile[second] + 0.05))
        if np.abs(ratio).max() >= config.merge_max_log2_depth_ratio:
            return False
        between = _median_distance(points[longest[first]], points[longest[second]])
        return between < config.merge_max_separation * max(spread[first], spread[second])

    roots = _joined_roots(len(clusters), same_genome)
    merged = labels.copy()
    for index, cluster in enumerate(clusters):
        merged[labels == cluster] = clusters[roots[index]]
    return merged


# Reads of a contig in a sample are taken as depth x length / this many bases. The fit
# measures the overdispersion of these counts and scales them by it, so this value only sets
# where that measurement starts (an overestimate of the reads is corrected; an underestimate
# makes the split more cautious).
_ASSUMED_READ_BP = 150.0
_MIXTURE_ITERATIONS = 300


def _two_shape_mixture(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit two multinomial shapes (how reads spread over the samples) to the rows of `counts`
    by EM; returns the posterior of the second component per row and the two shapes.

    Deterministic start: rows split by the sign of their projection on the main axis of their
    centred log shapes (weighted by their reads)."""
    n_samples = counts.shape[1]
    totals = counts.sum(axis=1)
    log_shape = np.log((counts + 0.5) / (totals[:, None] + 0.5 * n_samples))
    log_shape -= log_shape.mean(axis=1, keepdims=True)
    centred = log_shape - np.average(log_shape, axis=0, weights=totals)
    scatter = (centred * totals[:, None]).T @ centred
    axis = np.linalg.eigh(scatter)[1][:, -1]
    second = (centred @ axis > 0).astype(np.float64)
    for _ in range(_MIXTURE_ITERATIONS):
        responsibility = np.stack([1.0 - second, second], axis=1)
        shapes = responsibility.T @ counts + 1e-9
        shapes /= shapes.sum(axis=1, keepdims=True)
        weights = np.clip(responsibility.mean(axis=0), 1e-9, 1.0)
        log_likelihood = counts @ np.log(shapes).T + np.log(weights)
        updated = 1.0 / (
            1.0 + np.exp(np.clip(log_likelihood[:, 0] - log_likelihood[:, 1], -700, 700))
        )
        converged = np.abs(updated - second).max() < 1e-9
        second = updated
        if converged:
            break
    return second, shapes


def _count_dispersion(counts: np.ndarray, part: np.ndarray, shapes: np.ndarray) -> float:
    """Pearson chi-square per degree of freedom of the counts against the shape of the part
    each row is in (cells expecting at least 2 reads); at least 1."""
    expected = counts.sum(axis=1)[:, None] * shapes[part.astype(np.int64)]
    used = expected >= 2
    if not np.any(used):
        return 1.0
    chi_square = ((counts - expected) ** 2 / np.maximum(expected, 1e-12))[used].sum()
    freedom = max(int(used.sum()) - int(used.any(axis=1).sum()), 1)
    return max(1.0, float(chi_square / freedom))


def _depth_split(
    depths: np.ndarray, lengths: np.ndarray, config: ClusterConfig
) -> np.ndarray | None:
    """The members of a bin to split off as a second bin (see ClusterConfig.split_mixed_depth),
    or None."""
    counts = depths * lengths[:, None] / _ASSUMED_READ_BP
    if counts.sum() <= 0:
        return None
    dispersion = 1.0
    for _ in range(3):
        second, shapes = _two_shape_mixture(counts / dispersion)
        dispersion = _count_dispersion(counts, second > 0.5, shapes)
    second, shapes = _two_shape_mixture(counts / dispersion)
    part = second > 0.5
    for side in (part, ~part):
        if lengths[side].sum() < config.min_bin_size or side.sum() < config.min_cluster_size:
            return None
    weights = lengths.astype(np.float64)
    confident = np.maximum(second, 1.0 - second) > 0.95
    if np.average(confident, weights=weights) < config.split_min_confidence:
        return None
    first_depth = depths[~part].T @ weights[~part] / weights[~part].sum()
    second_depth = depths[part].T @ weights[part] / weights[part].sum()
    ratio = np.log2((first_depth + 1e-3) / (second_depth + 1e-3))
    if min(ratio.max(), -ratio.min()) < config.split_min_depth_crossing:
        return None
    return part


def _split_mixed_depth(
    labels: np.ndarray, lengths: np.ndarray, depths: np.ndarray, config: ClusterConfig
) -> np.ndarray:
    """Split each bin whose contigs form two populations of crossing depths in two."""
    result = labels.copy()
    next_label = int(labels.max(initial=-1)) + 1
    for cluster in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == cluster)
        if lengths[members].sum() < 2 * config.min_bin_size:
            continue
        part = _depth_split(depths[members], lengths[members], config)
        if part is not None:
            result[members[part]] = next_label
            next_label += 1
    return result


def _joined_roots(count: int, joined: Callable[[int, int], bool]) -> list[int]:
    """Union of the items 0..count-1 over the pairs for which `joined` holds (transitively):
    for each item, the item that names its group."""
    root = list(range(count))

    def find(index: int) -> int:
        while root[index] != index:
            index = root[index]
        return index

    for first in range(count):
        for second in range(first + 1, count):
            if joined(first, second):
                root[find(second)] = find(first)
    return [find(index) for index in range(count)]


def _median_distance(first: np.ndarray, second: np.ndarray | None = None) -> float:
    """Median euclidean distance between a row of `first` and a row of `second`; without
    `second`, over the distinct pairs of rows of `first` (0 for a single row)."""
    if second is None:
        if first.shape[0] < 2:
            return 0.0
        squared = ((first[:, None, :] - first[None, :, :]) ** 2).sum(axis=2)
        squared = squared[np.triu_indices(first.shape[0], 1)]
    else:
        squared = ((first[:, None, :] - second[None, :, :]) ** 2).sum(axis=2)
    return float(np.median(np.sqrt(squared)))


def _reassign_noise(points: np.ndarray, labels: np.ndarray, quantile: float) -> np.ndarray:
    """Give each noise point to the closest centroid whose cluster spread contains it."""
    clustered = labels >= 0
    noise = np.flatnonzero(~clustered)
    if noise.size == 0 or not np.any(clustered):
        return labels
    n_clusters = int(labels.max()) + 1
    counts = np.bincount(labels[clustered], minlength=n_clusters)
    centroids = np.zeros((n_clusters, points.shape[1]))
    np.add.at(centroids, labels[clustered], points[clustered])
    centroids /= np.maximum(counts, 1)[:, None]

    member_labels = labels[clustered]
    member_distances = np.linalg.norm(points[clustered] - centroids[member_labels], axis=1)
    # Per-cluster quantile without a loop: sort by (cluster, distance) and index into each run.
    order = np.lexsort((member_distances, member_labels))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    picks = starts + np.floor(quantile * (counts - 1)).astype(np.int64)
    radius = member_distances[order][np.minimum(picks, member_distances.size - 1)]
    radius = np.where(counts > 0, radius, 0.0)

    updated = labels.copy()
    centroid_sq = (centroids**2).sum(axis=1)
    for start in range(0, noise.size, _REASSIGN_CHUNK):
        rows = noise[start : start + _REASSIGN_CHUNK]
        block = points[rows]
        squared = (block**2).sum(axis=1)[:, None] - 2.0 * block @ centroids.T + centroid_sq
        distances = np.sqrt(np.maximum(squared, 0.0))
        relative = np.where(radius > 0, distances / np.where(radius > 0, radius, 1.0), np.inf)
        nearest = np.argmin(relative, axis=1)
        inside = relative[np.arange(rows.size), nearest] <= 1.0
        updated[rows[inside]] = nearest[inside]
    return updated


def _sample_of(names: np.ndarray, separator: str) -> np.ndarray:
    text = names.astype(str)
    parts = np.char.partition(text, separator)
    missing = (parts[:, 1] == "") | (parts[:, 0] == "")
    if np.any(missing):
        example = str(text[np.flatnonzero(missing)[0]])
        raise InputDataError(
            f"contig name {example!r} has no sample prefix before the separator {separator!r} "
            "needed for splitting bins per sample"
        )
    return parts[:, 0]


def cluster_latent(
    latent_means: np.ndarray,
    contig_lengths: np.ndarray,
    names: Sequence[str] | np.ndarray,
    config: ClusterConfig | None = None,
    depths: np.ndarray | None = None,
) -> ClusterResult:
    """Bin contigs by HDBSCAN on their latent means; see `ClusterConfig` for the options.

    `depths` (contigs x samples mean depth) is only used by `merge_same_depth` and
    `split_mixed_depth`, and only with at least `depth_min_samples` samples."""
    config = config or ClusterConfig()
    _validate(config)
    latent = np.asarray(latent_means)
    lengths = np.asarray(contig_lengths, dtype=np.int64)
    contig_names = np.asarray(names, dtype=object)
    n_contigs = lengths.shape[0]
    if latent.ndim != 2 or latent.shape[0] != n_contigs or contig_names.shape != (n_contigs,):
        raise ValueError(
            "latent means, contig lengths and names must have one row per contig "
            f"(got {latent.shape}, {lengths.shape}, {contig_names.shape})"
        )
    if n_contigs == 0:
        raise InputDataError("there are no contigs to cluster")
    if not np.all(np.isfinite(latent)):
        raise InputDataError("latent means contain NaN or infinite values; training diverged")
    samples = (
        _sample_of(contig_names, config.split_separator)
        if config.split_separator is not None
        else None
    )

    depth_matrix = None
    if depths is not None:
        depth_matrix = np.asarray(depths, dtype=np.float64).reshape(n_contigs, -1)
        if depth_matrix.shape[1] < config.depth_min_samples:
            depth_matrix = None

    points = _prepare_points(latent, config.metric)
    if n_contigs < max(3, config.min_cluster_size):
        # Too few points to tell genomes apart by density: the best one can do is one bin.
        raw_labels = np.zeros(n_contigs, dtype=np.int64)
    else:
        raw_labels = _density_clusters(points, lengths, config)
        if config.merge_same_depth and depth_matrix is not None:
            raw_labels = _merge_same_depth(points, raw_labels, lengths, depth_matrix, config)
    n_noise = int((raw_labels < 0).sum())
    labels = raw_labels
    if config.reassign_noise:
        labels = _reassign_noise(points, raw_labels, config.reassign_quantile)
    n_reassigned = int(n_noise - (labels < 0).sum())
    if config.group_leftovers:
        labels = _group_leftovers(points, labels, lengths, config)
    if config.long_contig_bin_bp is not None:
        long_noise = np.flatnonzero((labels < 0) & (lengths >= config.long_contig_bin_bp))
        labels = labels.copy()
        labels[long_noise] = labels.max(initial=-1) + 1 + np.arange(long_noise.size)
    if config.assign_leftovers:
        before = int((labels < 0).sum())
        labels = _assign_leftovers(points, labels, lengths, config)
        n_reassigned += before - int((labels < 0).sum())
    if config.split_mixed_depth and depth_matrix is not None:
        labels = _split_mixed_depth(labels, lengths, depth_matrix, config)
    return _name_bins(labels, lengths, samples, n_noise, n_reassigned, config)


def _density_clusters(points: np.ndarray, lengths: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """HDBSCAN (and re-clustering) labels of all contigs, or of the longest
    `max_hdbscan_contigs` with the others voted into their clusters."""
    n_contigs = lengths.shape[0]
    limit = config.max_hdbscan_contigs
    if limit is None or n_contigs <= limit:
        subset = np.arange(n_contigs)
    else:
        # Longest first; equal lengths keep input order, so the subset is reproducible.
        subset = np.sort(np.argsort(-lengths, kind="stable")[:limit])
    labels = _hdbscan_labels(points[subset], config)
    if config.recluster:
        labels = _split_clusters(points[subset], labels, lengths[subset], config)
    if subset.size == n_contigs:
        return labels
    full = np.full(n_contigs, -1, dtype=np.int64)
    full[subset] = labels
    rest = np.setdiff1d(np.arange(n_contigs), subset, assume_unique=True)
    return _vote_labels(points, full, subset[labels >= 0], rest, config)


def _within_genome_distance(points: np.ndarray, labels: np.ndarray, lengths: np.ndarray) -> float:
    """Median over clusters of the median distance between a cluster's longest members."""
    medians = []
    for cluster in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == cluster)
        longest = members[np.argsort(-lengths[members], kind="stable")[:_LONGEST_MEMBERS]]
        if longest.size < 2:
            continue
        medians.append(_median_distance(points[longest]))
    return float(np.median(medians)) if medians else 0.0


def _group_leftovers(
    points: np.ndarray, labels: np.ndarray, lengths: np.ndarray, config: ClusterConfig
) -> np.ndarray:
    """Single-linkage groups of noise contigs of at least min_bin_size bp become clusters."""
    from scipy.cluster.hierarchy import fcluster, linkage

    noise = np.flatnonzero(labels < 0)
    threshold = _within_genome_distance(points, labels, lengths)
    if noise.size < 2 or threshold <= 0:
        return labels
    if noise.size > _GROUP_MAX_CONTIGS:
        noise = np.sort(noise[np.argsort(-lengths[noise], kind="stable")[:_GROUP_MAX_CONTIGS]])
    groups = fcluster(linkage(points[noise], method="single"), t=threshold, criterion="distance")
    result = labels.copy()
    next_label = int(labels.max(initial=-1)) + 1
    for group in np.unique(groups):
        members = noise[groups == group]
        if members.size >= 2 and lengths[members].sum() >= config.min_bin_size:
            result[members] = next_label
            next_label += 1
    return result


def _vote_labels(
    points: np.ndarray,
    labels: np.ndarray,
    anchors: np.ndarray,
    queries: np.ndarray,
    config: ClusterConfig,
) -> np.ndarray:
    """Give each query row the label that at least `leftover_agreement` of its
    `leftover_neighbours` nearest anchor rows share (exact neighbours; a majority, so at most
    one label qualifies); other queries keep their label."""
    result = labels.copy()
    if anchors.size == 0 or queries.size == 0:
        return result
    anchor_points = points[anchors]
    anchor_norms = (anchor_points**2).sum(axis=1)
    # With fewer anchors than neighbours asked, all of them vote and the same share must agree.
    k = min(config.leftover_neighbours, anchors.size)
    needed = -(-config.leftover_agreement * k // config.leftover_neighbours)
    block = max(1, _VOTE_BLOCK_PAIRS // anchors.size)
    for start in range(0, queries.size, block):
        chunk = queries[start : start + block]
        distances = anchor_norms[None, :] - 2.0 * points[chunk] @ anchor_points.T
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        votes = labels[anchors[nearest]]
        # How many of the k neighbours share each neighbour's label; a majority label wins.
        agreeing = (votes[:, :, None] == votes[:, None, :]).sum(axis=2)
        winner = np.argmax(agreeing, axis=1)
        rows = np.arange(chunk.size)
        accepted = agreeing[rows, winner] >= needed
        result[chunk[accepted]] = votes[rows, winner][accepted]
    return result


def _assign_leftovers(
    points: np.ndarray, labels: np.ndarray, lengths: np.ndarray, config: ClusterConfig
) -> np.ndarray:
    """Give a noise contig the label that at least `leftover_agreement` of its
    `leftover_neighbours` nearest members of clusters of at least `min_bin_size` bp share
    (exact neighbours; a majority, so at most one label qualifies)."""
    clustered = labels >= 0
    if not np.any(clustered):
        return labels
    _, cluster_of = np.unique(labels[clustered], return_inverse=True)
    cluster_bp = np.bincount(cluster_of, weights=lengths[clustered])
    in_bin = np.zeros(labels.shape[0], dtype=bool)
    in_bin[np.flatnonzero(clustered)] = cluster_bp[cluster_of] >= config.min_bin_size
    return _vote_labels(points, labels, np.flatnonzero(in_bin), np.flatnonzero(~clustered), config)


def _name_bins(
    labels: np.ndarray,
    lengths: np.ndarray,
    samples: np.ndarray | None,
    n_noise: int,
    n_reassigned: int,
    config: ClusterConfig,
) -> ClusterResult:
    """Number clusters by size, split them per sample if asked, drop small bins, name them."""
    binned = labels >= 0
    n_clusters = int(np.unique(labels[binned]).size)
    final = np.full(labels.shape[0], -1, dtype=np.int64)
    if n_clusters == 0:
        return ClusterResult(final, [], 0, n_noise, n_reassigned, 0)
    # Renumber clusters 1..n by decreasing size in bp (ties: first contig), independent of the
    # arbitrary order HDBSCAN reports them in.
    cluster_ids, cluster_of_contig = np.unique(labels[binned], return_inverse=True)
    cluster_bp = np.bincount(cluster_of_contig, weights=lengths[binned])
    first_contig = np.full(cluster_ids.size, labels.shape[0])
    np.minimum.at(first_contig, cluster_of_contig, np.flatnonzero(binned))
    rank_order = np.lexsort((first_contig, -cluster_bp))
    cluster_number = np.empty(cluster_ids.size, dtype=np.int64)
    cluster_number[rank_order] = np.arange(1, cluster_ids.size + 1)
    numbers = cluster_number[cluster_of_contig]

    if samples is None:
        sample_names = np.array([""], dtype=object)
        sample_codes = np.zeros(numbers.size, dtype=np.int64)
    else:
        sample_names, sample_codes = np.unique(samples[binned], return_inverse=True)
    keys = numbers * sample_names.size + sample_codes
    bin_keys, bin_of_contig = np.unique(keys, return_inverse=True)
    bin_bp = np.bincount(bin_of_contig, weights=lengths[binned])
    large = bin_bp >= config.min_bin_size
    new_index = np.cumsum(large) - 1
    kept_keys = bin_keys[large]
    bin_names = [
        _bin_name(config, int(key // sample_names.size), str(sample_names[key % sample_names.size]))
        for key in kept_keys
    ]
    final[np.flatnonzero(binned)] = np.where(large[bin_of_contig], new_index[bin_of_contig], -1)
    return ClusterResult(
        labels=final,
        bin_names=bin_names,
        n_clusters=n_clusters,
        n_noise=n_noise,
        n_reassigned=n_reassigned,
        n_small_bins_dropped=int((~large).sum()),
    )


def _bin_name(config: ClusterConfig, number: int, sample: str) -> str:
    if config.split_separator is None:
        return f"{config.bin_prefix}.{number}"
    return f"{sample}.{config.bin_prefix}.{number}"
