"""The binning commands end to end (bin, train, cluster, evaluate) on a toy community."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vaebin.cluster import CLUSTER_STEPS
from vaebin.io.cami import read_cami_binning
from vaebin.markers import locate_hmm
from vaebin.pipeline import load_features, save_features
from vaebin.simulate import SimulationConfig, simulate_community

CLI = os.path.join(os.path.dirname(sys.executable), "vaebin-rs")
# Small and quick: a few epochs are enough to check behaviour, not quality.
FAST = ["--epochs", "30", "--threads", "2", "--quiet", "--min-bin-size", "50000"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def community(tmp_path_factory: pytest.TempPathFactory):
    return simulate_community(tmp_path_factory.mktemp("toy"), SimulationConfig.toy(seed=3))


@pytest.fixture(scope="module")
def binned(community, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("bin") / "out"
    bams = [arg for bam in community.bams for arg in ("--bam", bam)]
    result = run("bin", "--contigs", community.contigs_fasta, *bams, "--outdir", outdir, *FAST)
    assert result.returncode == 0, result.stderr
    return outdir


def read_fasta_gz(path: Path) -> dict[str, str]:
    records: dict[str, str] = {}
    name = ""
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        if line.startswith(">"):
            name = line[1:]
            records[name] = ""
        else:
            records[name] += line
    return records


def test_bin_writes_every_output(binned: Path, community) -> None:
    rows = (binned / "clusters.tsv").read_text().splitlines()
    assert rows[0] == "clustername\tcontigname"
    assignments = dict(reversed(row.split("\t")) for row in rows[1:])
    assert assignments, "no contig was binned"
    bins = sorted(set(assignments.values()))
    assert sorted(p.name for p in (binned / "bins").iterdir()) == sorted(
        f"{b}.fna.gz" for b in bins
    )
    contigs = read_fasta_gz(community.contigs_fasta)
    for bin_name in bins:
        records = read_fasta_gz(binned / "bins" / f"{bin_name}.fna.gz")
        assert set(records) == {c for c, b in assignments.items() if b == bin_name}
        assert all(records[name] == contigs[name] for name in records)
    unbinned = read_fasta_gz(binned / "unbinned.fna.gz")
    assert set(unbinned) == set(contigs) - set(assignments)
    cami = read_cami_binning(binned / "clusters.binning")
    assert cami == assignments
    summary = json.loads((binned / "summary.json").read_text())
    assert summary["counts"]["bins"] == len(bins)
    assert summary["counts"]["binned_contigs"] == len(assignments)
    assert summary["counts"]["contigs"] == len(contigs)
    assert summary["seed"] == 0
    # The epochs asked for, with the batch doublings at 8 / 25 / 50 / 75 % of them.
    assert summary["parameters"]["train"]["epochs"] == 30
    assert summary["parameters"]["train"]["batch_doubling_epochs"] == [2, 8, 15, 22]
    # The marker step runs when the marker HMM file is in its default place (.ci/setup puts it).
    markers_on = locate_hmm(None).exists
    assert summary["markers"]["status"] == ("on" if markers_on else "skipped")
    marker_step = {"markers"} if markers_on else set()
    assert set(summary["steps"]) == {"features", "train", "cluster", "write"} | marker_step
    # Every clustering step is listed, in order, with what it did or why it was skipped.
    cluster_steps = {step["name"]: step for step in summary["cluster_steps"]}
    assert list(cluster_steps) == [step.name for step in CLUSTER_STEPS] + ["name_bins"]
    assert cluster_steps["merge_same_depth"]["skipped_because"] == (
        "needs the depths of at least 3 samples (depth_min_samples); 2 given"
    )
    assert cluster_steps["hdbscan"]["ran"] and cluster_steps["hdbscan"]["clusters_after"] > 0
    assert cluster_steps["name_bins"]["clusters_after"] == summary["counts"]["bins"]
    assert all(step["peak_rss_mb"] > 0 for step in summary["steps"].values())
    assert sum(b["bp"] for b in summary["bins"]) == summary["counts"]["binned_bp"]
    assert np.load(binned / "latent.npy").shape[0] == summary["counts"]["contigs_embedded"]
    assert min(len(contigs[c]) for c in assignments) >= 2000


def test_same_seed_gives_identical_bins(binned: Path, community, tmp_path: Path) -> None:
    bams = [arg for bam in community.bams for arg in ("--bam", bam)]
    again = tmp_path / "again"
    result = run("bin", "--contigs", community.contigs_fasta, *bams, "--outdir", again, *FAST)
    assert result.returncode == 0, result.stderr
    assert (again / "clusters.tsv").read_bytes() == (binned / "clusters.tsv").read_bytes()
    np.testing.assert_array_equal(np.load(again / "latent.npy"), np.load(binned / "latent.npy"))


def test_evaluate_scores_the_bins(binned: Path, community, tmp_path: Path) -> None:
    report = tmp_path / "scores.json"
    result = run(
        "evaluate",
        "--truth",
        community.truth_binning,
        "--bins",
        binned / "clusters.tsv",
        "--json",
        report,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(report.read_text())
    assert (
        scores["binned_bp"]
        == json.loads((binned / "summary.json").read_text())["counts"]["binned_bp"]
    )
    assert "near-complete" in result.stdout
    # A toy community binned after 30 epochs must still recover most genomes well.
    assert scores["counts"]["0.5/0.9"] >= 4
    assert scores["adjusted_rand_index"] > 0.5


def test_train_then_cluster_alone_and_model_reuse(binned: Path, community, tmp_path: Path) -> None:
    trained = tmp_path / "trained"
    result = run(
        "train",
        "--features",
        binned / "features",
        "--outdir",
        trained,
        "--epochs",
        "30",
        "--threads",
        "2",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(trained / "latent.npy"), np.load(binned / "latent.npy"))
    clustered = tmp_path / "clustered"
    cluster_args = ("cluster", "--latent", trained, "--contigs", community.contigs_fasta)
    cluster_args += ("--min-bin-size", "50000", "--quiet")
    result = run(*cluster_args, "--features", binned / "features", "--outdir", clustered)
    assert result.returncode == 0, result.stderr
    assert (clustered / "clusters.tsv").read_bytes() == (binned / "clusters.tsv").read_bytes()
    # Without the features the depth steps cannot run: `cluster` says so and bins without them.
    depthless = tmp_path / "depthless"
    result = run(*cluster_args, "--outdir", depthless, "--merge-same-depth", "--split-mixed-depth")
    assert result.returncode == 0, result.stderr
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].endswith(
        " vaebin-rs WARNING: no --features: the depth steps (--merge-same-depth, "
        "--split-mixed-depth) are skipped, so the bins can differ from those of `vaebin-rs bin`"
    )
    assert (depthless / "clusters.tsv").is_file()
    # Features that lack a contig of the latent means are refused, naming the folder.
    full = load_features(binned / "features")
    partial = tmp_path / "partial"
    save_features(
        partial,
        replace(
            full,
            names=full.names[1:],
            lengths=full.lengths[1:],
            composition=full.composition[1:],
            depths=full.depths[1:],
        ),
    )
    refused = run(*cluster_args, "--features", partial, "--outdir", tmp_path / "refused")
    assert refused.returncode == 1
    first = str(full.names[0])
    assert refused.stderr.strip().splitlines() == [
        f"vaebin-rs: error: {partial}: no features for contig {first!r} of {trained} (1 missing); "
        "pass the features the model was trained on"
    ]
    assert not (tmp_path / "refused" / "clusters.tsv").exists()
    # A saved model bins the same data again without training, to the same latent space.
    reused = tmp_path / "reused"
    bams = [arg for bam in community.bams for arg in ("--bam", bam)]
    result = run(
        "bin",
        "--contigs",
        community.contigs_fasta,
        *bams,
        "--outdir",
        reused,
        "--model",
        binned / "model.pt",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(
        np.load(reused / "latent.npy"), np.load(binned / "latent.npy"), atol=1e-5
    )
    assert json.loads((reused / "summary.json").read_text())["device"] == "reused"


def test_depth_table_input_matches_bams(binned: Path, community, tmp_path: Path) -> None:
    depth = tmp_path / "depth.tsv"
    bams = [arg for bam in community.bams for arg in ("--bam", bam)]
    result = run("coverage", "--contigs", community.contigs_fasta, *bams, "--out", depth)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "from_depth"
    result = run(
        "bin", "--contigs", community.contigs_fasta, "--depth", depth, "--outdir", out, *FAST
    )
    assert result.returncode == 0, result.stderr
    assert (out / "clusters.tsv").read_bytes() == (binned / "clusters.tsv").read_bytes()


def test_multisplit_bins_are_named_per_sample(tmp_path: Path) -> None:
    community = simulate_community(
        tmp_path / "ms", SimulationConfig.toy(seed=5, contig_naming="multisplit")
    )
    bams = [arg for bam in community.bams for arg in ("--bam", bam)]
    out = tmp_path / "out"
    result = run(
        "bin",
        "--contigs",
        community.contigs_fasta,
        *bams,
        "--outdir",
        out,
        "--split-separator",
        "C",
        *FAST,
        "--min-bin-size",
        "1",
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in (out / "clusters.tsv").read_text().splitlines()[1:]]
    assert rows
    for bin_name, contig in rows:
        sample = contig.split("C", 1)[0]
        assert bin_name.startswith(f"{sample}.bin."), (bin_name, contig)


def test_multisplit_bins_recover_per_sample_genomes(tmp_path: Path) -> None:
    """The user's path: simulate --multisplit, bin --split-separator, evaluate --split-separator."""
    sim, out = tmp_path / "sim", tmp_path / "out"
    result = run("simulate", "--preset", "toy", "--multisplit", "--outdir", sim, "--quiet")
    assert result.returncode == 0, result.stderr
    bams = ["--bam", sim / "sample1.bam", "--bam", sim / "sample2.bam"]
    result = run(
        "bin", "--contigs", sim / "contigs.fna.gz", *bams, "--outdir", out,
        "--split-separator", "C", "--min-bin-size", "20000", "--threads", "2", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    truth = sim / "truth.binning"
    whole = run(
        "evaluate", "--truth", truth, "--bins", out / "clusters.tsv", "--json", tmp_path / "w.json"
    )
    split = run(
        "evaluate", "--truth", truth, "--bins", out / "clusters.tsv", "--split-separator", "C",
        "--json", tmp_path / "s.json",
    )  # fmt: skip
    assert whole.returncode == 0 and split.returncode == 0, whole.stderr + split.stderr
    # Against whole genomes a per-sample bin holds at most one sample's share: never complete.
    assert json.loads((tmp_path / "w.json").read_text())["near_complete"] == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    genomes = {score["genome"]: score for score in scores["genomes"]}
    assert sorted(genomes) == [f"S{s}:genome0{g}" for s in (1, 2) for g in range(1, 7)]
    # A per-sample genome is only scored against bins of its own sample.
    for name, score in genomes.items():
        if score["best_bin"] is not None:
            assert score["best_bin"].startswith(name.split(":")[0] + ".bin."), (name, score)
    # Upper bound: contigs under --min-contig-len (2000) are never binned, so a per-sample genome
    # can be near-complete only if > 90 % of its bp is in longer contigs and those add up to
    # --min-bin-size; 7 of the 12 qualify in this community (seed 0). Measured: 4 at 2 threads
    # (genome04 and genome06 share a bin in both samples), 6 at 1 thread; 3 leaves room for other
    # torch builds while still failing the unsplit scoring (0).
    truth_rows = read_cami_binning(truth)
    lengths = dict(
        line.split("\t")[0:3:2] for line in truth.read_text().splitlines() if line[:1] == "S"
    )
    long_bp: dict[str, int] = {}
    all_bp: dict[str, int] = {}
    for contig, genome in truth_rows.items():
        key = f"{contig.split('C', 1)[0]}:{genome}"
        all_bp[key] = all_bp.get(key, 0) + int(lengths[contig])
        long_bp[key] = long_bp.get(key, 0) + int(lengths[contig]) * (int(lengths[contig]) >= 2000)
    reachable = [k for k in all_bp if long_bp[k] > 0.9 * all_bp[k] and long_bp[k] >= 20000]
    assert len(reachable) == 7
    assert 3 <= scores["near_complete"] <= len(reachable)
    near_complete = [
        k for k, s in genomes.items() if s["completeness"] > 0.9 and s["purity"] > 0.95
    ]
    assert set(near_complete) <= set(reachable)
    assert f"near-complete (>90% complete, >95% pure): {scores['near_complete']}" in split.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--depth", "missing.tsv"], "missing.tsv"),
        ([], "give the abundances either as --bam/--bamdir or as --depth"),
    ],
)
def test_bin_input_errors(community, tmp_path: Path, args: list[str], message: str) -> None:
    result = run(
        "bin", "--contigs", community.contigs_fasta, "--outdir", tmp_path / "o", *args, *FAST
    )
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o" / "clusters.tsv").exists()


def test_no_contig_over_the_cutoff_is_one_clear_line(community, tmp_path: Path) -> None:
    bams = [arg for bam in community.bams for arg in ("--bam", bam)]
    result = run(
        "bin",
        "--contigs",
        community.contigs_fasta,
        *bams,
        "--outdir",
        tmp_path / "o",
        *FAST,
        "--min-contig-len",
        "100000000",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("vaebin-rs: error: no contig is at least 100000000 bp long")
    assert "Traceback" not in result.stderr


def test_small_inputs_never_crash(community, tmp_path: Path) -> None:
    contigs = read_fasta_gz(community.contigs_fasta)
    lengths = {name: len(seq) for name, seq in contigs.items()}
    for count in (1, 3, 9):
        names = sorted(lengths, key=lambda n: -lengths[n])[:count]
        fasta = tmp_path / f"few{count}.fa"
        fasta.write_text("".join(f">{n}\n{contigs[n]}\n" for n in names))
        depth = tmp_path / f"few{count}.tsv"
        rows = [f"{n}\t{lengths[n]}\t0\t0\t0" for n in names]  # one sample, all depths zero
        depth.write_text(
            "contigName\tcontigLen\ttotalAvgDepth\ts1.bam\ts1.bam-var\n" + "\n".join(rows) + "\n"
        )
        out = tmp_path / f"out{count}"
        result = run(
            "bin",
            "--contigs",
            fasta,
            "--depth",
            depth,
            "--outdir",
            out,
            *FAST,
            "--min-bin-size",
            "1",
        )
        assert result.returncode == 0, result.stderr
        assert (out / "clusters.tsv").is_file()
        binned_rows = (out / "clusters.tsv").read_text().splitlines()[1:]
        assert 1 <= len(binned_rows) <= count
