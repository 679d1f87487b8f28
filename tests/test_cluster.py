"""HDBSCAN binning of latent means: bins, noise, size filter, multi-split naming, tiny inputs."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import numpy as np
import pytest

from vaebin.cluster import (
    CLUSTER_STEPS,
    ClusterConfig,
    _assign_leftovers,
    _merge_same_depth,
    _moved,
    _reassign_noise,
    _split_mixed_depth,
    _vote_labels,
    cluster_latent,
    with_settings,
)
from vaebin.errors import InputDataError, ParameterError


def blobs(
    n_blobs: int = 3, per_blob: int = 30, dims: int = 8, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Well separated Gaussian blobs; returns points and the blob of each point."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=20.0, size=(n_blobs, dims))
    truth = np.repeat(np.arange(n_blobs), per_blob)
    return (centres[truth] + rng.normal(size=(truth.size, dims))).astype(np.float32), truth


def same_partition(labels: np.ndarray, truth: np.ndarray) -> bool:
    """True when labels and truth group the points identically."""
    pairs = {(int(a), int(b)) for a, b in zip(labels, truth, strict=True)}
    return len(pairs) == len(set(labels.tolist())) == len(set(truth.tolist()))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_separated_blobs_become_bins(metric: str) -> None:
    points, truth = blobs()
    lengths = np.full(truth.size, 10_000)
    names = [f"c{i}" for i in range(truth.size)]
    result = cluster_latent(points, lengths, names, ClusterConfig(metric=metric, min_bin_size=0))
    assert result.labels.dtype == np.int64
    assert result.n_clusters == 3
    assert same_partition(result.labels, truth)
    assert sorted(result.bin_names) == ["bin.1", "bin.2", "bin.3"]
    mapping = result.contig_bins(names)
    assert mapping["c0"] == result.bin_names[result.labels[0]]


def test_bins_are_numbered_by_size_in_bp() -> None:
    points, truth = blobs()
    lengths = np.where(truth == 2, 50_000, 10_000)
    result = cluster_latent(points, lengths, [str(i) for i in range(truth.size)], ClusterConfig())
    assert result.bin_names[result.labels[truth == 2][0]] == "bin.1"


def test_small_bins_are_dropped_and_counted() -> None:
    points, truth = blobs()
    # Blob 0: 30 x 10 kbp = 300 kbp is kept; blobs 1 and 2: 30 x 5 kbp = 150 kbp are dropped.
    lengths = np.where(truth == 0, 10_000, 5_000)
    result = cluster_latent(points, lengths, [str(i) for i in range(truth.size)], ClusterConfig())
    assert result.bin_names == ["bin.1"]
    assert result.n_small_bins_dropped == 2
    assert np.all(result.labels[truth == 0] == 0)
    assert np.all(result.labels[truth != 0] == -1)


def test_outlier_stays_unbinned_and_long_outlier_is_its_own_bin() -> None:
    points, truth = blobs()
    points = np.vstack([points, np.full((1, 8), 500.0, dtype=np.float32)])
    names = [str(i) for i in range(points.shape[0])]
    short = np.append(np.full(truth.size, 10_000), 5_000)
    keep_noise = ClusterConfig(min_bin_size=0, metric="euclidean", assign_leftovers=False)
    result = cluster_latent(points, short, names, keep_noise)
    assert result.labels[-1] == -1
    assert result.n_noise == 1
    long = np.append(np.full(truth.size, 10_000), 300_000)
    for assign in (False, True):
        config = ClusterConfig(metric="euclidean", assign_leftovers=assign)
        result = cluster_latent(points, long, names, config)
        assert result.labels[-1] >= 0
        assert np.sum(result.labels == result.labels[-1]) == 1


def test_noise_joins_a_bin_only_when_most_of_its_nearest_binned_neighbours_agree() -> None:
    # Bin 0: five contigs around x = 0; bin 1: five around x = 10; cluster 2 at x = 20 is under
    # min_bin_size, so it neither receives noise nor votes.
    ring = [[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]
    members = [[x + dx, dy] for x in (0.0, 10.0) for dx, dy in ring]
    noise = [[3.0, 0.0], [5.0, 0.0], [7.5, 0.0], [19.0, 0.0]]
    points = np.array([*members, [20.0, 0.0], *noise])
    labels = np.array([0] * 5 + [1] * 5 + [2] + [-1] * 4)
    lengths = np.array([100] * 10 + [50] + [10] * 4)
    config = ClusterConfig(min_bin_size=150)
    updated = _assign_leftovers(points, labels, lengths, config)
    # (3, 0): its 5 nearest bin members are bin 0's. (5, 0): 3 of bin 0 and 2 of bin 1 (or the
    # reverse), no 4 of 5 agree: it stays out. (7.5, 0) and (19, 0): bin 1's five.
    assert updated.tolist() == [0] * 5 + [1] * 5 + [2, 0, -1, 1, 1]
    assert labels.tolist() == [0] * 5 + [1] * 5 + [2] + [-1] * 4
    # Nearest neighbour alone (1 of 1) takes every noise contig.
    nearest = ClusterConfig(min_bin_size=150, leftover_neighbours=1, leftover_agreement=1)
    assert _assign_leftovers(points, labels, lengths, nearest).tolist()[-4:] == [0, 0, 1, 1]
    # No bin at all: nothing to join.
    no_bins = ClusterConfig(min_bin_size=10_000)
    assert _assign_leftovers(points, labels, lengths, no_bins).tolist() == labels.tolist()


def test_leftover_agreement_must_be_a_majority() -> None:
    names, lengths = ["a", "b"], np.array([10, 10])
    for neighbours, agreement in ((5, 2), (4, 2), (3, 4)):
        config = ClusterConfig(leftover_neighbours=neighbours, leftover_agreement=agreement)
        with pytest.raises(ParameterError, match="majority"):
            cluster_latent(np.zeros((2, 2)), lengths, names, config)


def test_noise_assignment_is_on_by_default_and_counted() -> None:
    points, _ = blobs()
    points = np.vstack([points, np.full((1, 8), 500.0, dtype=np.float32)])
    names = [str(i) for i in range(points.shape[0])]
    lengths = np.full(points.shape[0], 10_000)
    config = ClusterConfig(metric="euclidean")
    assert config.assign_leftovers
    result = cluster_latent(points, lengths, names, config)
    assert result.n_noise == 1
    assert result.n_reassigned == 1
    assert np.all(result.labels >= 0)


def test_noise_reassignment_takes_only_points_inside_a_cluster_spread() -> None:
    points = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    points = np.vstack([points, [[0.5, 0.0], [10.0, 0.0]]])
    labels = np.array([0, 0, 0, 0, 0, -1, -1])
    updated = _reassign_noise(points, labels, quantile=0.9)
    # Cluster spread is distance 1 from the centroid (0, 0): 0.5 is inside, 10 is not.
    assert updated.tolist() == [0, 0, 0, 0, 0, 0, -1]


def test_multisplit_names_bins_per_sample() -> None:
    points, truth = blobs(n_blobs=2, per_blob=20)
    sample = np.tile(["S1", "S2"], truth.size // 2)
    names = [f"{s}C{i}" for i, s in enumerate(sample)]
    config = ClusterConfig(split_separator="C", min_bin_size=0, metric="euclidean")
    result = cluster_latent(points, np.full(truth.size, 10_000), names, config)
    assert sorted(result.bin_names) == ["S1.bin.1", "S1.bin.2", "S2.bin.1", "S2.bin.2"]
    mapping = result.contig_bins(names)
    for name, bin_name in mapping.items():
        assert bin_name.startswith(name.split("C", 1)[0] + ".")
    # Contigs of one genome in one sample share a bin; across samples the number is the same.
    first = {mapping[n] for n, t, s in zip(names, truth, sample, strict=True) if t == 0}
    assert len(first) == 2
    assert len({b.split(".", 1)[1] for b in first}) == 1


def test_multisplit_without_separator_in_a_name_is_a_clear_error() -> None:
    points, truth = blobs(n_blobs=1, per_blob=12)
    names = [f"S1C{i}" for i in range(truth.size)]
    names[3] = "contig3"
    with pytest.raises(InputDataError, match="'contig3' has no sample prefix"):
        cluster_latent(
            points, np.full(truth.size, 10_000), names, ClusterConfig(split_separator="C")
        )


def test_clustering_is_deterministic() -> None:
    points, truth = blobs(n_blobs=5, per_blob=25, seed=3)
    lengths = np.full(truth.size, 10_000)
    names = [str(i) for i in range(truth.size)]
    first = cluster_latent(points, lengths, names, ClusterConfig())
    second = cluster_latent(points.copy(), lengths, names, ClusterConfig())
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.bin_names == second.bin_names
    threaded = cluster_latent(points, lengths, names, ClusterConfig(threads=2))
    np.testing.assert_array_equal(first.labels, threaded.labels)


@pytest.mark.parametrize("n_contigs", [1, 2, 3])
def test_tiny_inputs_give_one_bin(n_contigs: int) -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(n_contigs, 32)).astype(np.float32)
    result = cluster_latent(
        points, np.full(n_contigs, 250_000), [str(i) for i in range(n_contigs)], ClusterConfig()
    )
    assert result.labels.tolist() == [0] * n_contigs
    assert result.bin_names == ["bin.1"]


def test_one_genome_only_is_one_bin() -> None:
    points, _ = blobs(n_blobs=1, per_blob=60)
    result = cluster_latent(
        points, np.full(60, 10_000), [str(i) for i in range(60)], ClusterConfig()
    )
    assert result.bin_names == ["bin.1"]
    assert (result.labels == 0).sum() >= 50


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ClusterConfig(metric="manhattan"), "unknown metric"),
        (ClusterConfig(cluster_selection_method="best"), "unknown cluster selection method"),
        (ClusterConfig(min_cluster_size=1), "min_cluster_size"),
    ],
)
def test_bad_settings_are_clear_errors(config: ClusterConfig, message: str) -> None:
    points, truth = blobs()
    with pytest.raises(ParameterError, match=message):
        cluster_latent(points, np.full(truth.size, 1), [str(i) for i in range(truth.size)], config)


def test_non_finite_latent_is_a_clear_error() -> None:
    points = np.full((5, 4), np.nan, dtype=np.float32)
    with pytest.raises(InputDataError, match="NaN"):
        cluster_latent(points, np.full(5, 1), list("abcde"))


def test_recluster_splits_a_cluster_of_separate_dense_parts() -> None:
    from vaebin.cluster import _split_clusters

    rng = np.random.default_rng(11)
    centres = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    points = np.concatenate([c + rng.normal(0, 0.01, size=(40, 3)) for c in centres])
    lengths = np.full(points.shape[0], 10_000)
    merged = np.zeros(points.shape[0], dtype=np.int64)  # one cluster holding three parts
    config = ClusterConfig(min_bin_size=200_000)
    split = _split_clusters(points, merged, lengths, config)
    truth = np.repeat([0, 1, 2], 40)
    assert np.unique(split).size == 3
    for part in range(3):
        assert np.unique(split[truth == part]).size == 1
    # A single dense part stays whole, and parts below min_bin_size do not justify a split.
    one = centres[0] + rng.normal(0, 0.01, size=(120, 3))
    np.testing.assert_array_equal(_split_clusters(one, merged, lengths, config), merged)
    small = ClusterConfig(min_bin_size=450_000)
    np.testing.assert_array_equal(_split_clusters(points, merged, lengths, small), merged)


def test_recluster_keeps_parts_together_that_lie_about_as_far_apart_as_their_own_contigs() -> None:
    from vaebin.cluster import _split_clusters

    # Two parallel segments of evenly spread points, 0.3 apart: two dense parts to HDBSCAN, but
    # the parts' contigs lie 0.3 apart on their own segment too (median over pairs), so the
    # parts are no more different than one genome's contigs are.
    along = np.linspace(0.0, 1.0, 60)
    rng = np.random.default_rng(5)

    def segments(gap: float) -> np.ndarray:
        first = np.stack([along, np.zeros_like(along), np.zeros_like(along)], axis=1)
        second = first + np.array([0.0, gap, 0.0])
        return np.concatenate([first, second]) + rng.normal(0, 0.002, size=(120, 3))

    # Spreads are measured on each part's longest contigs: lengths in no order along a segment.
    lengths = 10_000 + 10 * rng.permutation(120)
    merged = np.zeros(120, dtype=np.int64)
    truth = np.repeat([0, 1], 60)
    close = segments(0.3)
    # Any dense parts: split.
    any_split = _split_clusters(close, merged, lengths, ClusterConfig(split_min_separation=0))
    assert same_partition(any_split, truth)
    # Default: the parts lie about 1.4x farther apart than within, under 2x: kept whole.
    np.testing.assert_array_equal(_split_clusters(close, merged, lengths, ClusterConfig()), merged)
    # Far apart segments (7x) are split with the default too.
    far = _split_clusters(segments(2.0), merged, lengths, ClusterConfig())
    assert same_partition(far, truth)
    with pytest.raises(ParameterError, match="split_min_separation"):
        cluster_latent(
            close, lengths, [str(i) for i in range(120)], ClusterConfig(split_min_separation=-1)
        )


def test_recluster_splits_off_a_genome_of_a_few_long_contigs_linked_apart_from_the_rest() -> None:
    from vaebin.cluster import _split_clusters

    # Three ordinary genome clusters set the within-genome distance; the fourth cluster holds a
    # genome of 60 short contigs and, 0.5 away, one of 4 long contigs (600 kbp): too few
    # contigs for HDBSCAN's min_cluster_size, so only linkage finds it.
    rng = np.random.default_rng(3)
    centres = np.eye(4) * 2.0
    blobs = [centre + rng.normal(0, 0.05, size=(60, 4)) for centre in centres]
    few = centres[3] + [0.5, 0, 0, 0] + rng.normal(0, 0.01, size=(4, 4))
    points = np.concatenate([*blobs, few])
    lengths = np.concatenate([np.full(240, 10_000), np.full(4, 150_000)])
    labels = np.concatenate([np.repeat([0, 1, 2, 3], 60), np.full(4, 3)])
    split = _split_clusters(points, labels, lengths, ClusterConfig())
    truth = np.concatenate([np.repeat([0, 1, 2, 3], 60), np.full(4, 4)])
    assert same_partition(split, truth)
    unsplit = _split_clusters(points, labels, lengths, ClusterConfig(split_linked_groups=False))
    np.testing.assert_array_equal(unsplit, labels)
    # Nearer than twice the genomes' own spread, the few contigs stay in the cluster.
    near = points.copy()
    near[240:] = centres[3] + [0.15, 0, 0, 0] + rng.normal(0, 0.01, size=(4, 4))
    np.testing.assert_array_equal(_split_clusters(near, labels, lengths, ClusterConfig()), labels)


def test_above_the_hdbscan_limit_the_longest_contigs_are_clustered_and_the_rest_voted_in() -> None:
    points, truth = blobs(n_blobs=3, per_blob=40)
    # Every third contig is short: HDBSCAN sees only the 80 long ones.
    lengths = np.where(np.arange(truth.size) % 3 == 0, 2_000, 50_000)
    names = [f"c{i}" for i in range(truth.size)]
    full = cluster_latent(points, lengths, names, ClusterConfig(metric="euclidean", min_bin_size=0))
    limited_config = ClusterConfig(metric="euclidean", min_bin_size=0, max_hdbscan_contigs=80)
    limited = cluster_latent(points, lengths, names, limited_config)
    assert same_partition(full.labels, truth)
    assert same_partition(limited.labels, truth)
    # Well inside their blobs, the short contigs are voted into the right bins: the same bins.
    assert limited.contig_bins(names) == full.contig_bins(names)


@pytest.mark.parametrize(
    ("neighbours", "agreement", "n_anchors"), [(5, 4, 400), (3, 2, 400), (5, 4, 3)]
)
def test_the_vote_is_that_of_the_exact_nearest_anchors(
    neighbours: int, agreement: int, n_anchors: int
) -> None:
    # Four overlapping clusters in 8 dimensions, float32 as the latent is: every query's label
    # must be the one a plain sort of all its distances to the anchors gives (a majority of the
    # nearest `neighbours`, or with fewer anchors all of them, else the query keeps its label).
    rng = np.random.default_rng(11)
    centres = rng.normal(scale=1.5, size=(4, 8))
    truth = rng.integers(4, size=n_anchors + 600)
    points = (centres[truth] + rng.normal(size=(truth.size, 8))).astype(np.float32)
    labels = np.where(np.arange(truth.size) < n_anchors, truth, -1)
    if n_anchors <= neighbours:  # all anchors vote, and all of them must agree
        labels[:n_anchors] = 1
    anchors, queries = np.arange(n_anchors), np.arange(n_anchors, truth.size)
    config = ClusterConfig(leftover_neighbours=neighbours, leftover_agreement=agreement)
    got = _vote_labels(points, labels, anchors, queries, config)
    k = min(neighbours, n_anchors)
    needed = -(-agreement * k // neighbours)
    expected = labels.copy()
    reference = points.astype(np.float64)
    for query in queries:
        distances = ((reference[anchors] - reference[query]) ** 2).sum(axis=1)
        nearest = anchors[np.argsort(distances, kind="stable")[:k]]
        values, counts = np.unique(labels[nearest], return_counts=True)
        if counts.max() >= needed:
            expected[query] = values[np.argmax(counts)]
    np.testing.assert_array_equal(got, expected)
    if n_anchors > neighbours:  # some votes pass, some do not
        assert 0 < (got[queries] >= 0).sum() < queries.size
    else:
        assert (got[queries] == 1).all()
    assert np.array_equal(got[anchors], labels[anchors])


def test_the_candidate_cluster_vote_agrees_with_the_exact_vote() -> None:
    # 12 clusters of anchors in 16 dimensions, some close to each other; queries from each, and
    # strays between two clusters that the exact vote leaves alone.
    rng = np.random.default_rng(7)
    centres = rng.normal(scale=3.0, size=(12, 16))
    centres[1] = centres[0] + 0.8  # two neighbouring clusters
    labels_of = rng.integers(12, size=3000)
    points = centres[labels_of] + rng.normal(scale=0.5, size=(3000, 16))
    points[2900:] = (centres[0] + centres[1]) / 2 + rng.normal(scale=0.3, size=(100, 16))
    labels = np.where(np.arange(3000) < 1500, labels_of, -1)
    anchors, queries = np.arange(1500), np.arange(1500, 3000)
    exact = _vote_labels(points, labels, anchors, queries, ClusterConfig())
    for candidates in (3, 8):
        config = ClusterConfig(vote_exact_max_pairs=0, vote_candidate_clusters=candidates)
        np.testing.assert_array_equal(_vote_labels(points, labels, anchors, queries, config), exact)
    assert np.array_equal(exact[1500:2900], labels_of[1500:2900])
    # With the home cluster alone as candidate, queries whose nearest anchors lie in the
    # neighbouring cluster vote among the wrong anchors: the candidates matter.
    alone = ClusterConfig(vote_exact_max_pairs=0, vote_candidate_clusters=1)
    assert not np.array_equal(_vote_labels(points, labels, anchors, queries, alone), exact)
    with pytest.raises(ParameterError, match="vote_candidate_clusters"):
        with_settings(ClusterConfig(), ["vote_candidate_clusters=0"])


def test_the_hdbscan_subset_is_the_longest_contigs_and_stray_ones_stay_noise() -> None:
    # Two mirror-image blobs around x = 0 and x = 10; a short contig at x = 5 has mirrored pairs
    # of neighbours, so no 4 of its 5 nearest agree.
    rng = np.random.default_rng(1)
    half = rng.normal(scale=0.7, size=(15, 2))
    points = np.vstack([half, [10.0, 0.0] - half * [1.0, -1.0], [[5.0, 0.0]]])
    truth = np.repeat([0, 1], 15)
    lengths = np.append(np.full(30, 10_000), 1_000)
    names = [f"c{i}" for i in range(lengths.size)]
    config = ClusterConfig(
        metric="euclidean", min_bin_size=0, max_hdbscan_contigs=30, assign_leftovers=False
    )
    result = cluster_latent(points, lengths, names, config)
    assert result.labels[-1] == -1
    assert result.n_noise == 1
    assert same_partition(result.labels[:-1], truth)
    with pytest.raises(ParameterError, match="max_hdbscan_contigs"):
        cluster_latent(points, lengths, names, ClusterConfig(max_hdbscan_contigs=1))


def test_a_genome_in_fewer_contigs_than_min_cluster_size_becomes_one_bin() -> None:
    points, truth = blobs(n_blobs=2, per_blob=30, dims=8, seed=3)
    rng = np.random.default_rng(4)
    # Four long contigs of a third genome, close together and far from both blobs: too few for
    # an HDBSCAN cluster (min_cluster_size 10).
    few = np.full((4, 8), 60.0) + 0.3 * rng.normal(size=(4, 8))
    points = np.vstack([points, few]).astype(np.float32)
    lengths = np.append(np.full(truth.size, 20_000), [250_000, 150_000, 120_000, 90_000])
    names = [f"c{i}" for i in range(lengths.size)]
    config = ClusterConfig(metric="euclidean", min_bin_size=200_000)
    grouped = cluster_latent(points, lengths, names, config)
    assert len(set(grouped.labels[-4:].tolist())) == 1 and grouped.labels[-1] >= 0
    assert same_partition(grouped.labels[:-4], truth)
    assert len(grouped.bin_names) == 3
    # Without grouping the 250 kbp contig is a bin of its own and the other three, whose
    # nearest binned contigs are mostly a blob's, are voted into that blob's bin.
    apart = cluster_latent(points, lengths, names, replace(config, group_leftovers=False))
    assert apart.labels[-4] >= 0
    assert apart.labels[-4] not in apart.labels[-3:]


def _two_close_clusters(depth_second: float, n_samples: int = 4) -> tuple:
    # Two groups of 30 contigs whose longest members lie about 1.7 times farther apart than
    # their own contigs do (median ~4.9 against ~2.8), depth 5 in every sample in the first.
    rng = np.random.default_rng(3)
    first = rng.normal(0.0, 1.0, size=(30, 4))
    second = rng.normal(0.0, 1.0, size=(30, 4)) + np.array([4.0, 0, 0, 0])
    points = np.vstack([first, second])
    labels = np.repeat([0, 1], 30)
    lengths = np.full(60, 10_000)
    depths = np.vstack([np.full((30, n_samples), 5.0), np.full((30, n_samples), depth_second)])
    return points, labels, lengths, depths


def test_close_clusters_with_the_same_depth_in_every_sample_are_joined() -> None:
    points, labels, lengths, depths = _two_close_clusters(5.2)
    config = ClusterConfig(merge_same_depth=True)
    merged = _merge_same_depth(points, labels, lengths, depths, config)
    assert np.unique(merged).tolist() == [0]


def test_close_clusters_of_different_depth_or_far_apart_stay_apart() -> None:
    points, labels, lengths, depths = _two_close_clusters(8.0)  # log2(8/5) = 0.68 > 0.3
    config = ClusterConfig(merge_same_depth=True)
    assert np.unique(_merge_same_depth(points, labels, lengths, depths, config)).tolist() == [0, 1]
    points, labels, lengths, depths = _two_close_clusters(5.0)
    strict = replace(config, merge_max_separation=1.5)
    assert np.unique(_merge_same_depth(points, labels, lengths, depths, strict)).tolist() == [0, 1]


def test_merge_same_depth_needs_closeness_and_three_samples() -> None:
    rng = np.random.default_rng(5)
    # Two dense blobs that HDBSCAN keeps apart, of equal depth.
    points = np.vstack([rng.normal(0, 0.05, (40, 8)) + 1.0, rng.normal(0, 0.05, (40, 8)) - 1.0])
    points[40:, 0] += 3.0
    lengths = np.full(80, 20_000)
    names = np.array([f"c{i}" for i in range(80)])
    depths = np.full((80, 4), 3.0)
    config = ClusterConfig(min_bin_size=100_000, metric="euclidean")
    assert config.merge_same_depth
    # Far apart in the latent space: the same depth alone does not join them.
    assert cluster_latent(points, lengths, names, config, depths=depths).n_clusters == 2
    near = replace(config, merge_max_separation=1e6)
    assert cluster_latent(points, lengths, names, near, depths=depths).n_clusters == 1
    assert cluster_latent(points, lengths, names, near, depths=depths[:, :2]).n_clusters == 2
    assert cluster_latent(points, lengths, names, near).n_clusters == 2
    off = replace(near, merge_same_depth=False)
    assert cluster_latent(points, lengths, names, off, depths=depths).n_clusters == 2


def _reads_depth(
    rng: np.random.Generator, mean_depth: np.ndarray, lengths: np.ndarray, overdispersion: float = 0
) -> np.ndarray:
    """Mean depths of contigs from simulated 150 bp read counts (Poisson, or gamma-Poisson with
    the given squared coefficient of variation)."""
    expected = np.outer(lengths, mean_depth) / 150.0
    if overdispersion > 0:
        expected = expected * rng.gamma(1 / overdispersion, overdispersion, size=expected.shape)
    return rng.poisson(expected) * 150.0 / lengths[:, None]


# Two strains in one bin, the abundances of E. coli 536 and the K-12-specific contigs in real set
# 1 (benchmarks/dev/NOTES.md): low depth, crossing profiles.
STRAIN_A = np.array([0.3, 0.9, 0.8, 3.5])
STRAIN_B = np.array([1.0, 0.5, 1.6, 5.5])


def _mixed_bin(
    second: np.ndarray, seed: int = 2, n_second: int = 40, lengths: tuple = (3_000, 15_000)
) -> tuple:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(*lengths, size=80 + n_second)
    profile = np.vstack([np.tile(STRAIN_A, (80, 1)), np.tile(second, (n_second, 1))])
    depths = np.vstack(
        [_reads_depth(rng, row, lengths[i : i + 1])[0] for i, row in enumerate(profile)]
    )
    truth = np.repeat([0, 1], [80, n_second])
    return np.zeros(truth.size, dtype=np.int64), lengths, depths, truth


def test_a_bin_of_two_strains_with_crossing_depths_is_split_by_strain() -> None:
    labels, lengths, depths, truth = _mixed_bin(STRAIN_B)
    config = ClusterConfig(split_mixed_depth=True, min_bin_size=100_000)
    split = _split_mixed_depth(labels, lengths, depths, config)
    assert np.unique(split).tolist() == [0, 1]
    assert same_partition(split, truth)
    # A stricter crossing than these strains show (1.74 and 0.85 in log2) keeps the bin whole.
    strict = replace(config, split_min_depth_crossing=1.0)
    assert np.unique(_split_mixed_depth(labels, lengths, depths, strict)).tolist() == [0]


def test_depth_split_needs_confident_assignments() -> None:
    # Contigs of 0.5-1.5 kbp carry a few reads each: about 55 % of the bp are assigned with
    # posterior > 0.95, under the default 0.6, so the bin stays whole.
    labels, lengths, depths, _ = _mixed_bin(STRAIN_B, lengths=(500, 1_500))
    config = ClusterConfig(split_mixed_depth=True, min_bin_size=20_000, min_cluster_size=5)
    assert np.unique(_split_mixed_depth(labels, lengths, depths, config)).tolist() == [0]
    lenient = replace(config, split_min_confidence=0.5)
    assert np.unique(_split_mixed_depth(labels, lengths, depths, lenient)).tolist() == [0, 1]


def test_collapsed_contigs_plasmids_and_noise_do_not_split_a_genome() -> None:
    config = ClusterConfig(split_mixed_depth=True, min_bin_size=100_000)
    # Contigs a strain shares with a second one: their depth is the sum of both, never lower.
    shared = STRAIN_A + np.array([3.0, 0.2, 1.0, 0.1])
    # Plasmids at three copies: the same profile, scaled.
    plasmids = 3 * STRAIN_A
    for second in (shared, plasmids):
        labels, lengths, depths, _ = _mixed_bin(second)
        assert np.unique(_split_mixed_depth(labels, lengths, depths, config)).tolist() == [0]
    # One genome whose contig depths vary more than Poisson reads do (CV 30 %).
    rng = np.random.default_rng(4)
    lengths = rng.integers(3_000, 15_000, size=200)
    depths = _reads_depth(rng, np.array([4.0, 1.0, 2.5, 6.0]), lengths, overdispersion=0.09)
    labels = np.zeros(200, dtype=np.int64)
    assert np.unique(_split_mixed_depth(labels, lengths, depths, config)).tolist() == [0]


def test_depth_split_needs_parts_of_bin_size_and_leaves_noise_alone() -> None:
    labels, lengths, depths, truth = _mixed_bin(STRAIN_B, n_second=12)
    small = int(lengths[truth == 1].sum())
    config = ClusterConfig(split_mixed_depth=True, min_bin_size=small + 1)
    assert np.unique(_split_mixed_depth(labels, lengths, depths, config)).tolist() == [0]
    labels[:5] = -1
    split = _split_mixed_depth(labels, lengths, depths, replace(config, min_bin_size=small))
    assert (split[:5] == -1).all() and np.unique(split).tolist() == [-1, 0, 1]
    assert same_partition(split[5:], truth[5:])


def test_cluster_latent_splits_strains_by_default_with_depths_of_three_samples() -> None:
    _, lengths, depths, truth = _mixed_bin(STRAIN_B)
    rng = np.random.default_rng(9)
    points = rng.normal(0, 0.05, (truth.size, 8)) + 1.0  # one dense blob: the species
    names = np.array([f"c{i}" for i in range(truth.size)])
    on = ClusterConfig(min_bin_size=100_000, metric="euclidean")
    assert on.split_mixed_depth
    off = replace(on, split_mixed_depth=False)
    assert len(cluster_latent(points, lengths, names, off, depths=depths).bin_names) == 1
    result = cluster_latent(points, lengths, names, on, depths=depths)
    assert len(result.bin_names) == 2 and same_partition(result.labels, truth)
    # The larger strain (bp) is bin 1, as bins are numbered by size.
    assert result.bin_names[result.labels[0]] == "bin.1"
    assert len(cluster_latent(points, lengths, names, on, depths=depths[:, :2]).bin_names) == 1
    assert len(cluster_latent(points, lengths, names, on).bin_names) == 1


# --- the steps as a declared list, and every setting reachable ----------------------------------


def test_every_step_is_recorded_in_order_with_what_it_did_or_why_not() -> None:
    points, truth = blobs(n_blobs=3, per_blob=40)
    lengths = np.full(points.shape[0], 10_000)
    depths = np.repeat(np.array([[2.0, 8.0], [9.0, 1.0], [4.0, 4.0]]), 40, axis=0)
    result = cluster_latent(points, lengths, np.arange(lengths.size).astype(str),
                            ClusterConfig(min_bin_size=100_000), depths=depths)  # fmt: skip
    records = {record.name: record for record in result.steps}
    assert list(records) == [step.name for step in CLUSTER_STEPS] + ["name_bins"]
    two_samples = "needs the depths of at least 3 samples (depth_min_samples); 2 given"
    assert records["merge_same_depth"].skipped_because == two_samples
    assert records["split_mixed_depth"].skipped_because == two_samples
    assert records["reassign_noise"].skipped_because == "off (reassign_noise = False)"
    assert records["vote_unclustered"].skipped_because == (
        "every contig went through HDBSCAN (max_hdbscan_contigs)"
    )
    hdbscan = records["hdbscan"]
    assert hdbscan.ran and (hdbscan.clusters_before, hdbscan.clusters_after) == (0, 3)
    assert hdbscan.unbinned_before == 120 and hdbscan.contigs_moved == 120 - hdbscan.unbinned_after
    # The records chain: each step starts from what the last one that ran left.
    ran = [record for record in result.steps if record.ran]
    for previous, record in itertools.pairwise(ran):
        assert record.unbinned_before == previous.unbinned_after
        assert record.clusters_before == previous.clusters_after
    assert ran[-1].unbinned_after == int((result.labels < 0).sum())
    assert same_partition(result.labels, truth)
    without_depths = cluster_latent(points, lengths, np.arange(lengths.size).astype(str))
    assert without_depths.steps[3].skipped_because == "no depths given"
    assert result.step_summaries()[0]["name"] == "hdbscan"


def test_the_noise_count_is_what_density_clustering_left() -> None:
    points, _ = blobs(n_blobs=2, per_blob=40, seed=4)
    points = np.vstack([points, [[200.0] * 8]]).astype(np.float32)  # a far outlier
    lengths = np.full(points.shape[0], 10_000)
    config = ClusterConfig(min_bin_size=100_000, long_contig_bin_bp=None)
    result = cluster_latent(points, lengths, np.arange(lengths.size).astype(str), config)
    records = {record.name: record for record in result.steps}
    assert result.n_noise == records["recluster"].unbinned_after >= 1


def test_moved_contigs_compare_partitions_not_label_numbers() -> None:
    before = np.array([0, 0, 1, 1, 1, -1, 2])
    after = np.array([5, 5, 5, 5, 7, 3, -1])
    # Cluster 0 -> 5 (relabelled, not moved); cluster 1 mostly -> 5, so its member now in 7
    # moved; the noise contig and the contig that became noise moved too.
    assert _moved(before, after).tolist() == [False, False, False, False, True, True, True]
    assert not _moved(before, np.where(before >= 0, before + 10, -1)).any()


def test_settings_reach_every_field_by_name_and_type() -> None:
    base = ClusterConfig()
    changed = with_settings(
        base,
        ["merge_max_separation=3", "long_contig_bin_bp=none", "recluster=false",
         "spread-members=12", "split_separator=C", "min_samples=None"],
    )  # fmt: skip
    assert changed.merge_max_separation == 3.0 and changed.long_contig_bin_bp is None
    assert changed.recluster is False and changed.spread_members == 12
    assert changed.split_separator == "C" and changed.min_samples is None
    assert with_settings(base, []) == base


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("threads=4", "expected NAME=VALUE with NAME one of assign_leftovers, "),
        ("min_bin_size", "expected NAME=VALUE"),
        ("min_bin_size=big", "'min_bin_size=big': min_bin_size takes an int value"),
        ("recluster=maybe", "recluster takes a bool value"),
        ("min_bin_size=none", "min_bin_size takes an int value"),
        ("leftover_agreement=1", "--cluster-param: leftover_agreement must be a majority"),
    ],
)
def test_bad_settings_name_the_setting(setting: str, message: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        with_settings(ClusterConfig(), [setting])


# --- overlap_split (long reads) ---------------------------------------------------------------


def ring_overlaps(first: int, n: int, reach: int = 3, weight: float = 10.0) -> list[tuple]:
    """Reads first..first+n-1 of one circular genome: each overlaps its next `reach` reads."""
    return [(first + i, first + (i + d) % n, weight) for i in range(n) for d in range(1, reach + 1)]


def overlap_matrix(edges: list[tuple], n: int):
    import scipy.sparse as sparse

    rows, cols, weights = zip(*edges, strict=True)
    matrix = sparse.csr_matrix((weights, (rows, cols)), shape=(n, n))
    return matrix.maximum(matrix.T).tocsr()


def run_overlap_split(matrix, views, n: int) -> np.ndarray:
    from vaebin.cluster import ReadOverlaps, _Work

    config = ClusterConfig(min_bin_size=1_000_000, overlap_split=True)
    work = _Work(np.asarray(views[0], dtype=np.float32), np.full(n, 50_000), 0, config)
    work.overlaps = ReadOverlaps(matrix, tuple(views))
    step = next(s for s in CLUSTER_STEPS if s.name == "overlap_split")
    return step.run(work, np.zeros(n, dtype=np.int64))


def test_overlap_split_cuts_a_bin_of_two_genomes_whose_reads_do_not_overlap() -> None:
    rng = np.random.default_rng(3)
    # Two genomes of 60 reads of 50 kbp (3 Mbp each) in one bin, two chance overlaps between
    # them; their reads' compositions (averaged over overlaps) differ by 3 standard deviations.
    edges = ring_overlaps(0, 60) + ring_overlaps(60, 60) + [(5, 70, 4.0), (30, 100, 4.0)]
    composition = rng.normal(size=(120, 6)) + np.repeat([[0.0], [3.0]], 60, axis=0)
    noise = rng.normal(size=(120, 3))
    labels = run_overlap_split(overlap_matrix(edges, 120), [noise, composition], 120)
    assert same_partition(labels, np.repeat([0, 1], 60))


def test_overlap_split_leaves_one_genome_whole() -> None:
    rng = np.random.default_rng(4)
    # One genome of 120 reads: any cut by its reads' features crosses its overlaps everywhere.
    labels = run_overlap_split(overlap_matrix(ring_overlaps(0, 120), 120),
                               [rng.normal(size=(120, 6))], 120)  # fmt: skip
    assert (labels == 0).all()
    # A genome too shallow to be one piece (40 pieces of 3 reads) whose features, averaged over
    # overlaps, are constant along each piece: the cut along pieces crosses no overlap at all,
    # but neither part is one piece, so there is nothing to judge the cut by.
    pieces = [(3 * p + i, 3 * p + (i + 1) % 3, 10.0) for p in range(40) for i in range(3)]
    piece_values = np.repeat(rng.normal(size=(40, 6)), 3, axis=0)
    labels = run_overlap_split(overlap_matrix(pieces, 120), [piece_values], 120)
    assert (labels == 0).all()


def test_overlap_split_is_skipped_for_contigs() -> None:
    points, _ = blobs(n_blobs=2, per_blob=40)
    lengths = np.full(points.shape[0], 10_000)
    names = np.arange(lengths.size).astype(str)
    result = cluster_latent(points, lengths, names, ClusterConfig(overlap_split=True))
    records = {record.name: record for record in result.steps}
    assert records["overlap_split"].skipped_because == (
        "no overlap graph (long reads only, with their overlap graph)"
    )
