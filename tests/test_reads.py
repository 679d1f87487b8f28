"""Long-read mode: read features against a slow pure-Python reference, `bin-reads` outputs,
determinism, errors, and a small simulated community binned to a stated quality."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vaebin import _core
from vaebin.evaluate import evaluate_bins
from vaebin.io.cami import read_cami_binning, read_truth_lengths
from vaebin.io.clusters import read_clusters
from vaebin.simulate_reads import LongReadConfig, simulate_long_reads

CLI = [os.path.join(os.path.dirname(sys.executable), "vaebin-rs")]
MIX = 0x9E3779B97F4A7C15
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def reverse_complement(kmer: str) -> str:
    return kmer.translate(COMPLEMENT)[::-1]


def code(kmer: str) -> int:
    return int(kmer.translate(str.maketrans("ACGT", "0123")), 4)


def slot_of(kmer: str, sampling: int) -> int | None:
    """The documented slot of a k-mer (rust/src/readcov.rs): canonical index, Fibonacci mix,
    sampled when the top log2(sampling) bits of the mixed value are zero."""
    k = len(kmer)
    if k % 2:
        # The orientation whose middle base is A or C; that base's high bit (0) is dropped.
        middle = k // 2
        oriented = kmer if kmer[middle] in "AC" else reverse_complement(kmer)
        value = code(oriented)
        low_bits = 2 * (k - 1 - middle) + 1
        index = ((value >> (low_bits + 1)) << low_bits) | (value & ((1 << low_bits) - 1))
        bits = 2 * k - 1
    else:
        index = min(code(kmer), code(reverse_complement(kmer)))
        bits = 2 * k
    mixed = (index * MIX) % (1 << 64) % (1 << bits)
    shift = bits - (sampling.bit_length() - 1)
    return mixed if mixed >> shift == 0 else None


def kmers(read: str, k: int) -> list[str]:
    upper = read.upper()
    return [
        upper[i : i + k] for i in range(len(upper) - k + 1) if set(upper[i : i + k]) <= set("ACGT")
    ]


def band_mean(values: list[int]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    low = min(math.floor(len(ordered) * 0.5), len(ordered) - 1)
    high = min(max(math.ceil(len(ordered) * 0.9), low + 1), len(ordered))
    return sum(ordered[low:high]) / (high - low)


def reference_features(
    samples: list[list[str]], k: int, sampling: int, bins: int, width: int, min_length: int
) -> list[tuple[list[float], list[float]]]:
    """Histograms (samples x bins) and abundances of every read of at least `min_length`."""
    counts = [Counter() for _ in samples]
    for sample, reads in enumerate(samples):
        for read in reads:
            for kmer in kmers(read, k):
                slot = slot_of(kmer, sampling)
                if slot is not None:
                    counts[sample][slot] += 1
    out = []
    for own, reads in enumerate(samples):
        for read in reads:
            if len(read) < min_length:
                continue
            slots = [s for s in (slot_of(m, sampling) for m in kmers(read, k)) if s is not None]
            per_sample: list[list[int]] = [[] for _ in samples]
            for slot in slots:
                values = [counts[j][slot] - (j == own) for j in range(len(samples))]
                if any(v > 0 for v in values):
                    for j, v in enumerate(values):
                        per_sample[j].append(v)
            histogram = []
            for values in per_sample:
                row = [0.0] * bins
                for v in values:
                    row[min(v // width, bins - 1)] += 1
                histogram.extend(x / max(len(values), 1) for x in row)
            out.append((histogram, [band_mean(v) for v in per_sample]))
    return out


def random_reads(rng: np.random.Generator, genome: str, n: int, low: int, high: int) -> list[str]:
    reads = []
    for i in range(n):
        length = int(rng.integers(low, high))
        start = int(rng.integers(0, len(genome) - length))
        read = genome[start : start + length]
        if i % 2:
            read = reverse_complement(read)
        if i % 4 == 1:
            position = int(rng.integers(0, length))
            read = read[:position] + "N" + read[position + 1 :]
        if i % 5 == 2:
            read = read.lower()
        reads.append(read)
    return reads


def write_fastq(path: Path, reads: list[str], prefix: str) -> Path:
    with gzip.open(path, "wt") as handle:
        for i, read in enumerate(reads):
            handle.write(f"@{prefix}{i} extra words\n{read}\n+\n{'I' * len(read)}\n")
    return path


@pytest.mark.parametrize(("k", "sampling"), [(8, 1), (9, 2), (12, 4), (15, 1)])
def test_features_match_a_slow_python_reference(tmp_path: Path, k: int, sampling: int) -> None:
    rng = np.random.default_rng(k)
    genome = "".join(rng.choice(list("ACGT"), 4000))
    other = "".join(rng.choice(list("ACGT"), 3000))
    sample1 = random_reads(rng, genome, 30, 40, 400) + random_reads(rng, other, 10, 40, 300)
    sample2 = [*random_reads(rng, other, 25, 40, 300), genome[: k - 1]]
    paths = [
        write_fastq(tmp_path / "a.fq.gz", sample1, "a"),
        write_fastq(tmp_path / "b.fq.gz", sample2, "b"),
    ]
    bins, width, min_length = 6, 2, 60
    got = _core.read_feature_arrays(
        [str(p) for p in paths],
        k=k,
        composition_k=2,
        bins=bins,
        bin_width=width,
        sampling=sampling,
        min_length=min_length,
        threads=2,
    )
    expected = reference_features([sample1, sample2], k, sampling, bins, width, min_length)
    assert got["histograms"].shape == (len(expected), 2 * bins)
    for row, (histogram, abundance) in enumerate(expected):
        np.testing.assert_allclose(got["histograms"][row], histogram, atol=1e-6)
        np.testing.assert_allclose(got["abundance"][row], abundance, atol=1e-5)
    kept = [r for r in sample1 + sample2 if len(r) >= min_length]
    assert got["lengths"].tolist() == [len(r) for r in kept]
    assert [s["records_too_short"] for s in got["stats"]] == [
        sum(len(r) < min_length for r in sample1),
        sum(len(r) < min_length for r in sample2),
    ]
    # The composition rows are frequencies of the canonical 2-mers.
    np.testing.assert_allclose(got["composition"].sum(axis=1), 1.0, atol=1e-5)


def test_histogram_by_hand(tmp_path: Path) -> None:
    # k = 8; r1's two k-mers: ACGTACGG is also twice in r2 (once as CCGTACGT), CGTACGGA once
    # in r3 (too short to be binned, still counted). Counts without r1 itself: 2 and 1.
    reads = tmp_path / "a.fq"
    reads.write_text(
        "@r1\nACGTACGGA\n+\nIIIIIIIII\n"
        "@r2\nACGTACGGNCCGTACGT\n+\nIIIIIIIIIIIIIIIII\n"
        "@r3\nCGTACGGA\n+\nIIIIIIII\n"
    )
    got = _core.read_feature_arrays(
        [str(reads)], k=8, composition_k=1, bins=3, bin_width=1, sampling=1, min_length=9
    )
    assert got["histograms"][0].tolist() == [0.0, 0.5, 0.5]
    assert got["histograms"][1].tolist() == [0.0, 0.0, 1.0]
    assert got["kmers"].tolist() == [2, 2]
    assert got["stats"][0]["kmers_counted"] == 5
    assert got["stats"][0]["fastq"] is True


def reference_graph(
    reads: list[str], k: int, sampling: int, graph_sampling: int, min_shared: int, max_group: int
) -> list[list[tuple[int, int]]]:
    """Every read's overlapping reads, counted naively: pairs sharing at least `min_shared` of
    the sampled slots kept for the graph (low bits zero), slots held by over `max_group` reads
    left out, most shared first and ties to the lower index."""
    sets = []
    for read in reads:
        slots = {slot_of(kmer, sampling) for kmer in kmers(read, k)} - {None}
        sets.append({s for s in slots if s % graph_sampling == 0})
    holders = Counter(s for slots in sets for s in slots)
    graph = []
    for r, mine in enumerate(sets):
        found = []
        for o, theirs in enumerate(sets):
            shared = sum(1 for s in mine & theirs if holders[s] <= max_group)
            if o != r and shared >= min_shared:
                found.append((o, shared))
        graph.append(sorted(found, key=lambda pair: (-pair[1], pair[0])))
    return graph


@pytest.mark.parametrize(
    ("k", "sampling", "graph_sampling", "max_group"), [(9, 1, 1, 64), (12, 2, 2, 4)]
)
def test_overlap_graph_matches_a_slow_python_reference(
    tmp_path: Path, k: int, sampling: int, graph_sampling: int, max_group: int
) -> None:
    rng = np.random.default_rng(k)
    genome = "".join(rng.choice(list("ACGT"), 3000))
    other = "".join(rng.choice(list("ACGT"), 2000))
    sample1 = random_reads(rng, genome, 25, 100, 600) + random_reads(rng, other, 10, 100, 500)
    sample2 = random_reads(rng, other, 15, 50, 500)
    paths = [
        write_fastq(tmp_path / "a.fq.gz", sample1, "a"),
        write_fastq(tmp_path / "b.fq.gz", sample2, "b"),
    ]
    min_length, min_shared = 80, 3
    got = _core.read_feature_arrays(
        [str(p) for p in paths],
        k=k,
        sampling=sampling,
        min_length=min_length,
        graph=True,
        graph_sampling=graph_sampling,
        min_shared=min_shared,
        max_group=max_group,
        max_neighbours=1000,
        threads=2,
    )
    kept = [r for r in sample1 + sample2 if len(r) >= min_length]
    expected = reference_graph(kept, k, sampling, graph_sampling, min_shared, max_group)
    offsets = got["graph_offsets"].tolist()
    assert len(offsets) == len(kept) + 1
    for r, want in enumerate(expected):
        lo, hi = offsets[r], offsets[r + 1]
        pairs = list(
            zip(
                got["graph_neighbours"][lo:hi].tolist(),
                got["graph_shared"][lo:hi].tolist(),
                strict=True,
            )
        )
        assert pairs == want, f"read {r}"
    # With k = 12 (4^12 k-mers against 5,000 in the genomes) reads of the two random genomes
    # share no k-mer by chance; with k = 9 some do, which the reference above counts alike.
    if k < 12:
        return
    of_genome = [0] * 25 + [1] * 10 + [1] * 15
    of_genome = [
        g for g, r in zip(of_genome, sample1 + sample2, strict=True) if len(r) >= min_length
    ]
    links = [(r, o) for r, found in enumerate(expected) for o, _ in found]
    assert len(links) > 50 and all(of_genome[r] == of_genome[o] for r, o in links)


def test_smoothing_and_voting_over_a_graph_by_hand() -> None:
    from vaebin.reads import OverlapGraph, smooth_over_graph, vote_over_graph

    # 0-1 share 4 k-mers, 1-2 share 2 (kept by read 1 only), read 3 overlaps nothing.
    graph = OverlapGraph(
        offsets=np.array([0, 1, 3, 3, 3], dtype=np.uint64),
        neighbours=np.array([1, 0, 2], dtype=np.uint32),
        shared=np.array([4, 4, 2], dtype=np.uint32),
    )
    values = np.array([[0.0], [6.0], [12.0], [5.0]], dtype=np.float32)
    once = smooth_over_graph(values, graph, 1)
    # Read 1: half its own 6, half (4 * 0 + 2 * 12) / 6 = 4.
    np.testing.assert_allclose(once[:, 0], [3.0, 5.0, 9.0, 5.0])
    twice = smooth_over_graph(values, graph, 2)
    np.testing.assert_allclose(twice[:, 0], [4.0, 5.0 / 2 + (4 * 3.0 + 2 * 9.0) / 12, 7.0, 5.0])
    # A star: read 0 overlaps reads 1-3 (3 k-mers each), read 4 overlaps nothing. A read's own
    # bin votes with its largest overlap, so read 0 in bin 0 with three neighbours in bin 1
    # moves (9 of 12), while they stay (3 of 6 is not over half).
    star = OverlapGraph(
        offsets=np.array([0, 3, 3, 3, 3, 3], dtype=np.uint64),
        neighbours=np.array([1, 2, 3], dtype=np.uint32),
        shared=np.array([3, 3, 3], dtype=np.uint32),
    )
    assert vote_over_graph(np.array([0, 1, 1, 1, 2]), star, 3).tolist() == [1, 1, 1, 1, 2]
    # Split neighbours: nobody holds over half, nothing moves; an unbinned read has no vote of
    # its own and joins its only binned neighbour's bin, an isolated one stays out.
    assert vote_over_graph(np.array([0, 1, 2, 0, 1]), star, 3).tolist() == [0, 1, 2, 0, 1]
    assert vote_over_graph(np.array([-1, 1, 1, 2, -1]), star, 1).tolist() == [1, 1, 1, 2, -1]
    assert vote_over_graph(np.array([0, -1, 1, 2, 1]), star, 1).tolist() == [0, 0, 1, 2, 1]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("toy-reads")
    # 4 genomes of 0.3-0.5 Mbp (one a related Markov model), 2 samples of 12 Mbp: 3,100 reads.
    config = LongReadConfig.preset(
        "toy", seed=3, genome_length_bp=(300_000, 500_000), bases_per_sample=12_000_000
    )
    simulate_long_reads(outdir, config)
    return outdir


FAST = ["--min-bin-size", "200000", "--threads", "2", "-q"]


def bin_reads(reads: list[Path], outdir: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [*CLI, "bin-reads", "--outdir", str(outdir), *FAST, *extra]
    for path in reads:
        argv += ["--reads", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def toy_binned(toy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("toy-binned") / "out"
    run = bin_reads(sorted(toy.glob("sample*.fq.gz")), outdir)
    assert run.returncode == 0, run.stderr
    return outdir


def test_toy_community_is_binned_well(toy: Path, toy_binned: Path) -> None:
    truth = read_cami_binning(toy / "truth.binning")
    result = evaluate_bins(
        truth,
        read_truth_lengths(toy / "truth.binning"),
        read_clusters(toy_binned / "read_clusters.tsv"),
    )
    # Measured: 3 near-complete, the 4th 90 % complete (its related genome's bin holds the
    # rest), ARI 0.94.
    assert result.near_complete >= 3, result.table()
    assert result.count(0.7, 0.9) == 4, result.table()
    assert result.adjusted_rand_index > 0.9, result.table()
    assert result.binned_bp > 0.9 * result.total_bp


def test_overlap_graph_links_reads_of_one_genome(toy: Path, toy_binned: Path) -> None:
    from vaebin.reads import load_read_features

    features = load_read_features(toy_binned / "features")
    graph = features.graph
    assert graph is not None and graph.n_reads == features.n_reads
    summary = json.loads((toy_binned / "summary.json").read_text())
    assert summary["counts"]["graph_edges"] == graph.neighbours.size > features.n_reads
    assert summary["parameters"]["scale"]["latent_smoothing"] == 4
    truth = read_cami_binning(toy / "truth.binning")
    genome = np.array([truth[name] for name in features.names.astype(str)])
    rows = np.repeat(np.arange(graph.n_reads), np.diff(graph.offsets.astype(np.int64)))
    # The toy genomes share no sequence (one is only drawn from a related Markov model).
    assert (genome[rows] == genome[graph.neighbours]).mean() > 0.99


def fastq_records(path: Path) -> dict[str, tuple[str, str]]:
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    return {lines[i][1:].split()[0]: (lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)}


def test_outputs_hold_every_read_once(toy: Path, toy_binned: Path) -> None:
    inputs: dict[str, tuple[str, str]] = {}
    for path in sorted(toy.glob("sample*.fq.gz")):
        inputs.update(fastq_records(path))
    written: dict[str, tuple[str, str]] = {}
    clusters = read_clusters(toy_binned / "read_clusters.tsv")
    for path in sorted((toy_binned / "bins").glob("*.fq.gz")):
        records = fastq_records(path)
        bin_name = path.name.removesuffix(".fq.gz")
        assert {clusters[name] for name in records} == {bin_name}
        assert not set(records) & set(written)
        written.update(records)
    unbinned = fastq_records(toy_binned / "unbinned.fq.gz")
    assert not set(unbinned) & set(written)
    written.update(unbinned)
    assert written == inputs
    assert set(clusters) == set(written) - set(unbinned)
    header = (toy_binned / "read_clusters.tsv").read_text().splitlines()[0]
    assert header == "clustername\treadname"
    summary = json.loads((toy_binned / "summary.json").read_text())
    assert summary["mode"] == "reads"
    assert summary["counts"]["binned_reads"] == len(clusters)
    assert {"features", "train", "cluster", "write"} <= set(summary["steps"])
    assert all(step["peak_rss_mb"] > 0 for step in summary["steps"].values())
    assert summary["parameters"]["features"]["k"] == 15


def test_same_seed_same_bins(toy: Path, toy_binned: Path, tmp_path: Path) -> None:
    again = bin_reads(sorted(toy.glob("sample*.fq.gz")), tmp_path / "again", "--no-reads-output")
    assert again.returncode == 0, again.stderr
    first = (toy_binned / "read_clusters.tsv").read_bytes()
    assert (tmp_path / "again" / "read_clusters.tsv").read_bytes() == first
    assert not (tmp_path / "again" / "bins").exists()


def test_fasta_reads_give_fasta_bins(tmp_path: Path) -> None:
    community = tmp_path / "fa"
    config = LongReadConfig.preset("toy", seed=4, n_samples=1, fasta=True)
    simulate_long_reads(community, config)
    run = bin_reads([community / "sample1.fa.gz"], tmp_path / "out")
    assert run.returncode == 0, run.stderr
    bins = sorted((tmp_path / "out" / "bins").iterdir())
    assert bins and all(p.name.endswith(".fa.gz") for p in bins)
    with gzip.open(bins[0], "rt") as handle:
        assert handle.readline().startswith(">S1R")


def one_line_error(run: subprocess.CompletedProcess, *expected: str) -> None:
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("vaebin-rs: error: ")
    for text in expected:
        assert text in lines[0], lines[0]


def test_bad_inputs_give_one_line_and_no_output(tmp_path: Path, toy: Path) -> None:
    empty = tmp_path / "empty.fq"
    empty.write_text("")
    truncated = tmp_path / "truncated.fq.gz"
    truncated.write_bytes((toy / "sample1.fq.gz").read_bytes()[:50_000])
    quality = tmp_path / "quality.fq"
    quality.write_text("@a\n" + "ACGT" * 300 + "\n+\nIII\n")
    short = tmp_path / "short.fq"
    short.write_text("@a\nACGTACGTAC\n+\nIIIIIIIIII\n")
    duplicate = tmp_path / "dup.fq.gz"
    duplicate.write_bytes((toy / "sample1.fq.gz").read_bytes())
    cases = [
        ([empty], [str(empty), "contains no sequences (empty file)"]),
        ([truncated], [str(truncated), "truncated gzip"]),
        ([quality], [str(quality), "record 1: FASTQ quality line has 3 characters"]),
        ([short], [str(short), "no read is at least 1000 bp long (1 reads)"]),
        ([toy / "sample1.fq.gz", duplicate], [str(duplicate), "read name 'S1R", "unique"]),
        ([tmp_path / "missing.fq"], ["missing.fq", "no such file"]),
    ]
    for number, (inputs, expected) in enumerate(cases):
        outdir = tmp_path / f"out{number}"
        one_line_error(bin_reads(inputs, outdir), *expected)
        assert not (outdir / "read_clusters.tsv").exists()
        assert not (outdir / "summary.json").exists()
    bad_k = bin_reads([toy / "sample1.fq.gz"], tmp_path / "k", "-k", "20")
    one_line_error(bad_k, "abundance k must be between 8 and 16, got 20")


def test_evaluate_scores_read_bins_in_bases(toy: Path, toy_binned: Path) -> None:
    run = subprocess.run(
        [
            *CLI,
            "evaluate",
            "--truth",
            str(toy / "truth.binning"),
            "--bins",
            str(toy_binned / "read_clusters.tsv"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    total = sum(read_truth_lengths(toy / "truth.binning").values())
    assert f"/{total} bp" in run.stdout.splitlines()[0]


def test_a_rust_panic_is_one_line_naming_a_bug(tmp_path: Path) -> None:
    reads_file = write_fastq(tmp_path / "r.fq.gz", ["ACGT" * 300], "r")
    script = (
        "import sys; from vaebin import _core, cli, reads; "
        "reads.compute_read_features = lambda *a, **k: _core._panic_for_tests('out of bounds'); "
        "sys.argv = ['vaebin-rs', 'bin-reads', '--reads', sys.argv[1], '--outdir', sys.argv[2]]; "
        "cli.main()"
    )
    env = {k: v for k, v in os.environ.items() if k != "VAEBIN_DEBUG"}
    run = subprocess.run(
        [sys.executable, "-c", script, str(reads_file), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 70
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(
        "vaebin-rs: error: internal error (a bug in vaebin-rs, not in your input): "
        "PanicException: out of bounds (please report it "
    ), lines[0]
    assert "panicked" not in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out" / "read_clusters.tsv").exists()
