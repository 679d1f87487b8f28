"""What the marker-gene step costs inside `vaebin-rs bin`, and what its estimates say, on real
genome sequences (issue 15 item 1).

Real genomes (FASTA files, e.g. those of `benchmarks/data/reads-set1/genomes`) are cut into
contigs of log-normal lengths (median 12 kbp, at least 2 kbp), each genome given a random depth
profile over 3 samples (a MetaBAT2 depth table; no reads, no assembly), and binned with
`--no-markers`, the marker step in metagenomic mode, `--marker-gene-calling trained` (the
default) with and without its search filters, and the first two with the clustering's marker
steps switched on (`--runs` picks).
Printed: per run the wall time of each `bin` step and the marker step's CPU time per Mbp,
near-complete genomes (vaebin.evaluate) and, per bin, the marker estimate beside the truth (the
genome most of the bin's bp come from and the share of it the bin holds).

    python benchmarks/markers_cost.py --genomes-dir benchmarks/data/reads-set1/genomes \\
        --genomes ecok12,eco536,hpyl,saur,mmar,tkod --outdir /tmp/markers-cost [--threads 2]

Sequences come from the genomes; depths and contig boundaries are simulated: the binning
figures are not a benchmark of binning quality, only context for the marker figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from vaebin.evaluate import evaluate_bins
from vaebin.io.bin_table import read_bin_table
from vaebin.io.clusters import read_clusters

RUNS = {
    "no markers": ["--no-markers"],
    "markers (meta)": ["--marker-gene-calling", "meta"],
    "markers (trained)": ["--marker-gene-calling", "trained"],
    "markers (trained) without search filters": [
        "--marker-gene-calling",
        "trained",
        "--no-marker-filters",
    ],
    "markers (meta) + marker steps": [
        "--marker-gene-calling",
        "meta",
        "--cluster-param",
        "marker_split=true",
        "--cluster-param",
        "marker_merge=true",
    ],
    "markers (trained) + marker steps": [
        "--marker-gene-calling",
        "trained",
        "--cluster-param",
        "marker_split=true",
        "--cluster-param",
        "marker_merge=true",
    ],
}


def read_fasta(path: Path) -> str:
    """The concatenated sequence of a genome's records (replicons joined; cuts ignore joins)."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return "".join(line for line in lines if line and not line.startswith(">")).upper()


def make_community(genomes: dict[str, str], outdir: Path, seed: int) -> tuple[Path, Path, dict]:
    rng = np.random.default_rng(seed)
    records, depth_rows, truth = [], [], {}
    for genome, sequence in genomes.items():
        profile = rng.lognormal(1.5, 1.0, size=3)
        start = 0
        number = 0
        while start < len(sequence):
            length = max(2000, int(rng.lognormal(np.log(12000), 0.8)))
            piece = sequence[start : start + length]
            start += length
            if len(piece) < 2000:
                break
            name = f"{genome}_{number}"
            number += 1
            records.append(f">{name}\n{piece}\n")
            depths = profile * rng.uniform(0.85, 1.15, size=3)
            depth_rows.append(
                f"{name}\t{len(piece)}\t{depths.sum():.4f}\t"
                + "\t".join(f"{d:.4f}" for d in depths)
            )
            truth[name] = (genome, len(piece))
    outdir.mkdir(parents=True, exist_ok=True)
    contigs, depth = outdir / "contigs.fna", outdir / "depth.txt"
    contigs.write_text("".join(records))
    header = "contigName\tcontigLen\ttotalAvgDepth\ts1\ts2\ts3\n"
    depth.write_text(header + "\n".join(depth_rows) + "\n")
    return contigs, depth, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes-dir", type=Path, required=True)
    parser.add_argument("--genomes", required=True, help="comma-separated names (NAME.fna)")
    parser.add_argument("--outdir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated run names")
    args = parser.parse_args()
    names = args.genomes.split(",")
    genomes = {name: read_fasta(args.genomes_dir / f"{name}.fna") for name in names}
    contigs, depth, truth = make_community(genomes, args.outdir / "community", args.seed)
    mbp = sum(length for _, length in truth.values()) / 1e6
    print(f"{len(truth)} contigs, {mbp:.1f} Mbp from {len(names)} genomes", flush=True)
    cli = Path(sys.executable).with_name("vaebin-rs")
    genome_bp: dict[str, int] = {}
    for genome, length in truth.values():
        genome_bp[genome] = genome_bp.get(genome, 0) + length
    for label in args.runs.split(","):
        outdir = args.outdir / label.replace(" ", "_").replace("(", "").replace(")", "")
        command = [str(cli), "bin", "--contigs", str(contigs), "--depth", str(depth)]
        command += ["--outdir", str(outdir), "--threads", str(args.threads), "--quiet"]
        command += ["--seed", str(args.seed), *RUNS[label]]
        subprocess.run(command, check=True)
        summary = json.loads((outdir / "summary.json").read_text())
        bins = read_clusters(outdir / "clusters.tsv")
        result = evaluate_bins(
            {c: g for c, (g, _) in truth.items()}, {c: n for c, (_, n) in truth.items()}, bins
        )
        steps = ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in summary["steps"].items())
        print(f"\n### {label}: {summary['seconds']:.1f} s wall ({steps})")
        block = summary["markers"]
        if block["status"] == "on":
            cpu = block["time"]["cpu"]["seconds"]
            calling = block["time"]["gene_calling"]["seconds"]
            search = block["time"]["search"]["seconds"]
            print(
                f"markers: {block['gene_calling']}, {block['genes_called']} genes, "
                f"{block['marker_hits']} hits, gene calling {calling:.1f} s "
                f"+ search {search:.1f} s wall, "
                f"{cpu:.1f} CPU s = {cpu / mbp:.2f} CPU s/Mbp"
            )
        print(
            f"near-complete {result.near_complete}, ARI {result.adjusted_rand_index:.3f}, "
            f"bins {result.n_bins}"
        )
        if block["status"] != "on":
            continue
        print(
            "| bin | bp | main genome | share of the bin | share of the genome "
            "| marker compl. | marker cont. |"
        )
        print("|---|---|---|---|---|---|---|")
        for row in read_bin_table(outdir / "bins.tsv"):
            members = [c for c, b in bins.items() if b == row["bin"]]
            per_genome: dict[str, int] = {}
            for contig in members:
                genome, length = truth[contig]
                per_genome[genome] = per_genome.get(genome, 0) + length
            main_genome = max(per_genome, key=per_genome.__getitem__)
            bp = sum(per_genome.values())
            main_bp = per_genome[main_genome]
            print(
                f"| {row['bin']} | {bp:,} | {main_genome} | {100 * main_bp / bp:.1f} % "
                f"| {100 * main_bp / genome_bp[main_genome]:.1f} % "
                f"| {row['marker_completeness']} | {row['marker_contamination']} |"
            )
        steps_record = {s["name"]: s for s in summary["cluster_steps"]}
        for name in ("marker_split", "marker_merge"):
            record = steps_record[name]
            did = record["skipped_because"] or (
                f"moved {record['contigs_moved']} contigs, clusters "
                f"{record['clusters_before']} -> {record['clusters_after']}"
            )
            print(f"{name}: {did}")


if __name__ == "__main__":
    main()
