"""Long-read binning benchmark: vaebin-rs `bin-reads` (default and article presets) against
LRBinner, on communities of real genomes whose reads an independent simulator made.

What is built (under benchmarks/data/, git-ignored):

- `reads-set1`: the 21 genomes of debian_community.py's set 1 (real bacterial and archaeal
  genomes from Debian packages, five species with two strains), 3 samples, seed 21;
- `reads-set2`: the 16 other genomes of its set 2, 3 samples, seed 22;
- `reads-set4`: the 13 genomes of its set 4 (13 species in none of its sets 1 to 3, from the
  test data of PyPI sdists; no two strains of one species), 3 samples, seed 24;
- `reads-set5`: the 12 genomes of its set 5 (two sibling pairs at about 95 % identity among 8
  species of other genera; a new mix of genomes of its other sets), 3 samples, seed 25;
- `reads-simulated`: `vaebin-rs simulate --long-reads --preset benchmark --seed 1 --samples 3`
  (Markov-model genomes, vaebin's own read simulator).

How the reads of sets 1, 2 and 4 are made: every genome gets a seeded log-normal abundance per
sample (as debian_community.draw_coverages, with this script's seed), scaled so that a sample
holds about 250 Mbp of reads (LRBinner's article measured 250 Mbp from 15 genomes); pbsim
(Debian `pbsim` 1.0.3, PacBio CLR quality model) simulates reads of mean accuracy 0.92 (8 %
errors, mostly indels), mean length ~8 kb (N50 ~10 kb), at least 1000 bp. A sample's reads go
into one `sample<N>.fq.gz`, named `<genome>.s<N>.<index>`; `truth.binning` (CAMI, with
`_LENGTH`) holds every read of every sample; `sample1.fq` is kept uncompressed for LRBinner.
None of vaebin-rs's code makes these reads.

Set 1 and the simulated community are the **tuning** sets (the parameter grid, `--grid`, runs
on them only); sets 2, 4 and 5 are **held out**: look at them to check, never to choose a parameter.

Runs (one child process at a time, 2 threads, wall / CPU / peak RSS from _measure.run_child):
vaebin-rs on sample 1 alone and on all 3 samples, `--preset default` (seeds 1..3) and
`--preset article` (the first seed); LRBinner on sample 1 (the only mode it has) with the
parameters of its README and `-mbs` scaled to the read count. Every run is scored in bases with
vaebin.evaluate.evaluate_bins against the reads of the samples it was given. `--throughput`
times the read featurizer on >= 1 Gbp of reads. Results accumulate in
benchmarks/results/reads.json (a run already there is not repeated) and print as tables:

    python benchmarks/reads.py --lrbinner /path/to/run_lrbinner.sh
    python benchmarks/reads.py --communities set1 --tools vaebin --seeds 1 --grid
    python benchmarks/reads.py --throughput --communities "" --tools ""
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from _measure import MB, machine_description, run_child  # benchmarks/ is on sys.path
from debian_community import (
    GENOME_SETS,
    PACKAGE_CACHE,
    fetch_packages,
    prepare_genomes,
)

from vaebin.evaluate import EvaluationResult, evaluate_bins
from vaebin.io.cami import read_cami_binning, read_truth_lengths, write_cami_binning
from vaebin.io.clusters import read_clusters

BENCHMARKS_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCHMARKS_DIR / "data"
RUNS_DIR = DATA_DIR / "reads-runs"
RESULTS = BENCHMARKS_DIR / "results" / "reads.json"
VAEBIN = str(Path(sys.executable).with_name("vaebin-rs"))
THREADS = 2
SAMPLES = 3

BASES_PER_SAMPLE = 250_000_000
GENOME_SIGMA = 1.0  # spread of a genome's mean abundance (log scale), as debian_community
SAMPLE_SIGMA = 0.8  # spread of one genome's abundance across samples (log scale)
PBSIM_MODEL = Path("/usr/share/pbsim/models/model_qc_clr")
PBSIM_SETTINGS = (
    ("--data-type", "CLR"),
    ("--accuracy-mean", "0.92"),
    ("--accuracy-sd", "0.02"),
    ("--accuracy-min", "0.85"),
    ("--length-mean", "8000"),
    ("--length-sd", "6500"),  # pbsim's length model then gives an N50 of ~10 kb
    ("--length-min", "1000"),
    ("--length-max", "60000"),
)
GZIP_LEVEL = 3

# LRBinner's README example; its defaults bin worse.
LRBINNER_ARGS = ("-k", "3", "-bc", "10", "-bs", "32", "--ae-dims", "4", "--ae-epochs", "200")
LRBINNER_ARGS += ("-bit", "0")

# One setting varied at a time from the defaults (bin-reads --help); seed 1, tuning sets only.
GRID: dict[str, tuple[int, ...]] = {
    "--min-cluster-size": (25, 50, 100),
    "--kmer-sampling": (4, 8, 16),
    "--composition-k": (3, 4),
    "--epochs": (10, 20, 40),
}
GRID_DEFAULTS = {
    "--min-cluster-size": 50,
    "--kmer-sampling": 8,
    "--composition-k": 4,
    "--epochs": 20,
}

THROUGHPUT_BASES = 1_000_000_000
THROUGHPUT_SEED = 5


@dataclass(frozen=True)
class Community:
    """One benchmark community: where it lives, how it is made and what it is used for."""

    name: str
    outdir: Path
    role: str  # "tuning" or "held-out"
    genome_set: int | None  # debian_community's genome set, None for vaebin's simulator
    seed: int

    def sample_reads(self, sample: int) -> Path:
        return self.outdir / f"sample{sample}.fq.gz"

    @property
    def plain_sample1(self) -> Path:
        return self.outdir / "sample1.fq"

    @property
    def truth(self) -> Path:
        return self.outdir / "truth.binning"


COMMUNITIES = {
    "set1": Community("set1", DATA_DIR / "reads-set1", "tuning", 1, 21),
    "set2": Community("set2", DATA_DIR / "reads-set2", "held-out", 2, 22),
    "set4": Community("set4", DATA_DIR / "reads-set4", "held-out", 4, 24),
    "set5": Community("set5", DATA_DIR / "reads-set5", "held-out", 5, 25),
    "simulated": Community("simulated", DATA_DIR / "reads-simulated", "tuning", None, 1),
}


def log(message: str) -> None:
    print(f"[reads] {time.strftime('%H:%M:%S')} {message}", flush=True)


def run(argv: Sequence[str], **kwargs: Any) -> None:
    """Run a command; stop the script with its stderr tail when it fails."""
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    completed = subprocess.run(list(argv), stderr=subprocess.PIPE, text=True, **kwargs)
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
        sys.exit(f"reads.py: `{' '.join(argv[:3])} ...` failed:\n{tail}")


# ---------------------------------------------------------------------------------------------
# Building the communities


def draw_read_coverages(genome_bp: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Depth (x) of every genome in every sample: seeded log-normal abundances, each sample
    scaled to BASES_PER_SAMPLE bases of reads."""
    rng = np.random.default_rng(seed)
    shape = (genome_bp.size, samples)
    base = rng.normal(0.0, GENOME_SIGMA, size=shape[0])
    abundance = np.exp(base[:, None] + rng.normal(0.0, SAMPLE_SIGMA, size=shape))
    # abundance is copies per cell: a sample's bases are sum(depth * genome length).
    bases_at_unit_depth = (abundance * genome_bp[:, None]).sum(axis=0, keepdims=True)
    return BASES_PER_SAMPLE * abundance / bases_at_unit_depth


def fastq_records(path: Path) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(name line, bases, qualities) of each record of a 4-line FASTQ file (as pbsim writes)."""
    with path.open("rb") as handle:
        while True:
            header = handle.readline()
            if not header:
                return
            bases = handle.readline().rstrip(b"\n")
            handle.readline()
            qualities = handle.readline().rstrip(b"\n")
            yield header, bases, qualities


def simulate_genome_reads(genome_fasta: Path, depth: float, seed: int, scratch: Path) -> list[Path]:
    """pbsim reads of one genome at `depth`; one FASTQ per record of the genome, in order."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    argv = ["pbsim", "--model_qc", str(PBSIM_MODEL), "--depth", f"{depth:.5f}"]
    argv += [value for pair in PBSIM_SETTINGS for value in pair]
    argv += ["--seed", str(seed), "--prefix", str(scratch / "r"), str(genome_fasta)]
    run(argv)
    for alignment in scratch.glob("r_*.maf"):
        alignment.unlink()  # pbsim always writes the alignments; they are not needed
    return sorted(scratch.glob("r_*.fastq"))


def build_pbsim_community(community: Community) -> None:
    """Genomes from debian_community, pbsim reads per genome and sample, truth.binning last."""
    if community.truth.is_file():
        log(f"{community.name}: cached in {community.outdir}")
        return
    if shutil.which("pbsim") is None or not PBSIM_MODEL.is_file():
        sys.exit("reads.py: pbsim is missing; install it with: apt-get install pbsim")
    assert community.genome_set is not None
    sources = GENOME_SETS[community.genome_set].sources
    community.outdir.mkdir(parents=True, exist_ok=True)
    root = fetch_packages(PACKAGE_CACHE, sources)
    genomes = prepare_genomes(community.outdir, root, sources)
    genome_names = [source.genome for source in sources]
    genome_bp = np.array([sum(len(b) for _, b in genomes[g]) for g in genome_names])
    depths = draw_read_coverages(genome_bp, SAMPLES, community.seed)
    log(
        f"{community.name}: {len(genome_names)} genomes, {genome_bp.sum() / MB:.1f} Mbp; "
        f"depth {depths.min():.2f}-{depths.max():.1f}x"
    )
    read_names: list[str] = []
    read_genomes: list[str] = []
    read_lengths: list[int] = []
    scratch = community.outdir / "pbsim-scratch"
    for sample in range(1, SAMPLES + 1):
        packed = community.sample_reads(sample)
        partial = packed.with_name(f".{packed.name}.part")
        plain_partial = community.plain_sample1.with_name(".sample1.fq.part")
        plain = plain_partial.open("wb") if sample == 1 else None
        sample_bp = 0
        with gzip.open(partial, "wb", GZIP_LEVEL) as out:
            for index, genome in enumerate(genome_names):
                fastqs = simulate_genome_reads(
                    community.outdir / "genomes" / f"{genome}.fna",
                    float(depths[index, sample - 1]),
                    community.seed * 10_000 + sample * 100 + index,
                    scratch,
                )
                number = 0
                chunk: list[bytes] = []
                for fastq in fastqs:
                    for _, bases, qualities in fastq_records(fastq):
                        number += 1
                        name = f"{genome}.s{sample}.{number}"
                        chunk.append(b"@%s\n%s\n+\n%s\n" % (name.encode(), bases, qualities))
                        read_names.append(name)
                        read_genomes.append(genome)
                        read_lengths.append(len(bases))
                        sample_bp += len(bases)
                block = b"".join(chunk)
                out.write(block)
                if plain is not None:
                    plain.write(block)
        if plain is not None:
            plain.close()
            plain_partial.replace(community.plain_sample1)
        partial.replace(packed)
        log(f"{community.name}: sample{sample}: {sample_bp / MB:.1f} Mbp of reads")
    shutil.rmtree(scratch, ignore_errors=True)
    table = ["genome\tlength_bp\t" + "\t".join(f"depth_sample{s + 1}" for s in range(SAMPLES))]
    for index, genome in enumerate(genome_names):
        row = "\t".join(f"{d:.4f}" for d in depths[index])
        table.append(f"{genome}\t{genome_bp[index]}\t{row}")
    (community.outdir / "genomes.tsv").write_text("\n".join(table) + "\n")
    write_cami_binning(
        community.truth, read_names, read_genomes, read_lengths, sample_id=community.name
    )


def build_simulated_community(community: Community) -> None:
    """vaebin-rs's own long-read simulator (benchmark preset), plus a plain sample1.fq."""
    if not community.truth.is_file():
        log(f"{community.name}: vaebin-rs simulate --long-reads --preset benchmark")
        argv = [VAEBIN, "simulate", "--long-reads", "--preset", "benchmark"]
        argv += ["--seed", str(community.seed), "--samples", str(SAMPLES)]
        argv += ["--threads", str(THREADS), "--outdir", str(community.outdir), "-q"]
        run(argv)
    if not community.plain_sample1.is_file():
        partial = community.plain_sample1.with_name(".sample1.fq.part")
        with gzip.open(community.sample_reads(1), "rb") as packed, partial.open("wb") as out:
            shutil.copyfileobj(packed, out, 1 << 22)
        partial.replace(community.plain_sample1)


def build(community: Community) -> None:
    if community.genome_set is None:
        build_simulated_community(community)
    else:
        build_pbsim_community(community)


def sample_read_names(community: Community, sample: int) -> list[str]:
    """Names of the reads of one sample (cached next to the reads)."""
    cache = community.outdir / f"sample{sample}.names"
    if not cache.is_file():
        partial = cache.with_name(f".{cache.name}.part")
        with partial.open("w") as out:
            unpack = subprocess.Popen(
                ["gzip", "-dc", str(community.sample_reads(sample))], stdout=subprocess.PIPE
            )
            run(["awk", "NR % 4 == 1 { print substr($1, 2) }"], stdin=unpack.stdout, stdout=out)
            unpack.wait()
        partial.replace(cache)
    return cache.read_text().split()


# ---------------------------------------------------------------------------------------------
# Running and scoring


def score(community: Community, samples: int, bins: dict[str, str]) -> dict[str, Any]:
    """Score read -> bin against the truth of the reads of samples 1..`samples`, in bases."""
    truth = read_cami_binning(community.truth)
    lengths = read_truth_lengths(community.truth)
    if samples < SAMPLES:
        given = {name for s in range(1, samples + 1) for name in sample_read_names(community, s)}
        truth = {name: genome for name, genome in truth.items() if name in given}
    result: EvaluationResult = evaluate_bins(truth, lengths, bins)
    return {
        "near_complete": result.near_complete,
        "medium_quality": result.counts["0.5/0.9"],
        "ari": round(result.adjusted_rand_index, 4),
        "binned_fraction": round(result.binned_bp / result.total_bp, 4),
        "bins": result.n_bins,
        "genomes": len(result.genomes),
        "reads_not_in_truth": result.contigs_not_in_truth,
    }


def run_key(community: str, samples: int, tool: str, seed: int, setting: str = "") -> str:
    return f"{community}|{samples}|{tool}|{seed}|{setting}"


def run_vaebin(
    community: Community,
    samples: int,
    preset: str,
    seed: int,
    setting: tuple[str, int] | None,
    graph: bool = False,
) -> dict[str, Any]:
    """One `vaebin-rs bin-reads` run, scored (`graph`: with --overlap-graph)."""
    label = f"s{samples}-{preset}-seed{seed}" + (f"{setting[0]}{setting[1]}" if setting else "")
    label += "-graph" if graph else ""
    outdir = RUNS_DIR / community.name / label
    shutil.rmtree(outdir, ignore_errors=True)
    argv = [VAEBIN, "bin-reads"]
    for sample in range(1, samples + 1):
        argv += ["--reads", str(community.sample_reads(sample))]
    argv += ["--outdir", str(outdir), "--threads", str(THREADS), "--preset", preset]
    argv += ["--seed", str(seed), "--device", "cpu", "--no-reads-output", "-q"]
    if setting is not None:
        argv += [setting[0], str(setting[1])]
    if graph:
        argv.append("--overlap-graph")
    child = run_child(argv, capture_stdout=False)
    summary = json.loads((outdir / "summary.json").read_text())
    record = {
        "community": community.name,
        "role": community.role,
        "samples": samples,
        "tool": ("vaebin-rs" if preset == "default" else "vaebin-rs article")
        + (" + overlap graph" if graph else ""),
        "preset": preset,
        "seed": seed,
        "setting": f"{setting[0]} {setting[1]}" if setting else "",
        "wall_s": round(child.wall_seconds, 1),
        "cpu_s": round(child.cpu_seconds, 1),
        "peak_rss_mb": round(child.peak_rss_bytes / MB),
        "steps": summary.get("steps", {}),
        **score(community, samples, read_clusters(outdir / "read_clusters.tsv")),
    }
    for name in ("features", "latent.npy", "model.pt"):
        path = outdir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return record


# Genomes of one species in the real sets (debian_community.py's descriptions): 15-mers tell
# them apart only at their differences.
SPECIES_GROUPS = {
    "set1": [("eco536", "ecok12", "abacas"), ("hpyl", "hpylsjm"), ("kpne", "kpnentuh"),
             ("saur", "saur300"), ("vcho", "vcho395")],
    "set2": [("hpylels", "hpylgam", "hpylpuno"), ("kpnehs", "kpnekap"), ("saurjkd", "saurrf")],
    "set5": [("hpylsjm", "hpylf32")],
}  # fmt: skip


def species_ceiling(community: Community, samples: int) -> dict[str, Any]:
    """The score of a binning that is perfect up to species: every read in the bin of its
    genome's species (strains together). No read binner without strain resolution beats it."""
    truth = read_cami_binning(community.truth)
    species = {g: group[0] for group in SPECIES_GROUPS[community.name] for g in group}
    bins = {read: species.get(genome, genome) for read, genome in truth.items()}
    return {
        "community": community.name,
        "role": community.role,
        "samples": samples,
        "tool": "species-level ceiling (truth)",
        "preset": "",
        "seed": 0,
        "setting": "",
        "wall_s": 0.0,
        "cpu_s": 0.0,
        "peak_rss_mb": 0,
        "steps": {},
        **score(community, samples, bins),
    }


def count_reads(fastq: Path) -> int:
    with fastq.open("rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 22), b""))
    return lines // 4


def run_lrbinner(community: Community, wrapper: Path) -> dict[str, Any]:
    """LRBinner `reads` mode on sample 1 (uncompressed), README parameters, scored."""
    outdir = RUNS_DIR / community.name / "s1-lrbinner"
    shutil.rmtree(outdir, ignore_errors=True)
    reads = count_reads(community.plain_sample1)
    min_bin_reads = max(500, reads // 100)
    argv = ["bash", str(wrapper), str(community.plain_sample1), str(outdir), str(THREADS)]
    argv += [*LRBINNER_ARGS, "-mbs", str(min_bin_reads)]
    child = run_child(argv, capture_stdout=False)
    bins: dict[str, str] = {}
    for line in (outdir / "read_bins.tsv").read_text().splitlines():
        name, label = line.split("\t")
        if label != "-1":
            bins[name] = f"lrbinner.{label}"
    return {
        "community": community.name,
        "role": community.role,
        "samples": 1,
        "tool": "LRBinner",
        "preset": "README -k 3 -bc 10 -bs 32 --ae-dims 4 --ae-epochs 200 -bit 0",
        "seed": 0,
        "setting": f"-mbs {min_bin_reads}",
        "reads": reads,
        "wall_s": round(child.wall_seconds, 1),
        "cpu_s": round(child.cpu_seconds, 1),
        "peak_rss_mb": round(child.peak_rss_bytes / MB),
        **score(community, 1, bins),
    }


# ---------------------------------------------------------------------------------------------
# Featurizer throughput

THROUGHPUT_CHILD = """
import json, sys, time
from vaebin._core import read_feature_arrays
start = time.perf_counter()
arrays = read_feature_arrays([sys.argv[1]], threads=int(sys.argv[2]), graph=sys.argv[3] == "1")
seconds = time.perf_counter() - start
bases = sum(stats["bases"] for stats in arrays["stats"])
stats = arrays["stats"][0]
print(json.dumps({"seconds": seconds, "bases": bases, "reads": int(arrays["lengths"].size),
                  "reading_s": stats["seconds_reading"], "counting_s": stats["seconds_counting"],
                  "profiles_s": arrays["seconds_profiles"],
                  "graph_s": arrays.get("seconds_graph", 0.0)}))
"""


PHASES = ("reading_s", "counting_s", "profiles_s", "graph_s")


def throughput() -> list[dict[str, Any]]:
    """Mbp/s of read_feature_arrays on >= 1 Gbp of reads, with the overlap graph (as
    `bin-reads` makes the features by default) and without: gzip at 1 and 2 threads, plain at
    2."""
    folder = DATA_DIR / "reads-throughput"
    packed = folder / "sample1.fq.gz"
    if not packed.is_file():
        log("simulating 1 Gbp of long reads for the throughput runs")
        argv = [VAEBIN, "simulate", "--long-reads", "--preset", "benchmark", "--samples", "1"]
        argv += ["--bases-per-sample", str(THROUGHPUT_BASES), "--seed", str(THROUGHPUT_SEED)]
        argv += ["--threads", str(THREADS), "--outdir", str(folder), "-q"]
        run(argv)
    plain = folder / "sample1.fq"
    if not plain.is_file():
        partial = folder / ".sample1.fq.part"
        with gzip.open(packed, "rb") as source, partial.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 22)
        partial.replace(plain)
    records = []
    runs = [
        (path, threads, graph)
        for graph in (True, False)
        for path, threads in ((packed, 1), (packed, 2), (plain, 2))
    ]
    for path, threads, graph in runs:
        argv = [sys.executable, "-c", THROUGHPUT_CHILD, str(path), str(threads), str(int(graph))]
        child = run_child(argv)
        measured = json.loads(child.stdout)
        records.append(
            {
                "input": "gzip FASTQ" if path.suffix == ".gz" else "plain FASTQ",
                "threads": threads,
                "graph": graph,
                "bases": measured["bases"],
                "reads": measured["reads"],
                "call_s": round(measured["seconds"], 1),
                "mbp_per_s": round(measured["bases"] / MB / measured["seconds"], 1),
                **{key: round(measured[key], 1) for key in PHASES},
                "child_wall_s": round(child.wall_seconds, 1),
                "peak_rss_mb": round(child.peak_rss_bytes / MB),
            }
        )
        log(f"throughput: {records[-1]}")
    return records


# ---------------------------------------------------------------------------------------------
# Results


def load_results() -> dict[str, Any]:
    if RESULTS.is_file():
        return json.loads(RESULTS.read_text())
    return {"runs": {}, "throughput": [], "machine": {}}


def save_results(results: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    partial = RESULTS.with_name(f".{RESULTS.name}.part")
    partial.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    partial.replace(RESULTS)


ROW = (
    "| {samples} | {tool} | {seed} | {setting} | {nc} | {mq} | {ari} | {binned} | {wall} | {rss} |"
)
HEADER = (
    "| samples | tool | seed | setting | NC | MQ | ARI | binned | wall s | peak RSS MB |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def print_tables(results: dict[str, Any]) -> None:
    """One markdown table per community, then the throughput table."""
    runs = list(results["runs"].values())
    for name, community in COMMUNITIES.items():
        rows = [r for r in runs if r["community"] == name]
        if not rows:
            continue
        rows.sort(key=lambda r: (r["setting"] != "" and r["tool"] != "LRBinner", r["samples"]))
        print(f"\n### {name} ({community.role})\n\n{HEADER}")
        for r in rows:
            print(
                ROW.format(
                    samples=r["samples"],
                    tool=r["tool"],
                    seed=r["seed"] or "-",
                    setting=r["setting"] or "-",
                    nc=r["near_complete"],
                    mq=r["medium_quality"],
                    ari=f"{r['ari']:.3f}",
                    binned=f"{r['binned_fraction']:.3f}",
                    wall=r["wall_s"],
                    rss=r["peak_rss_mb"],
                )
            )
    if results["throughput"]:
        print("\n### read featurizer throughput\n")
        print(
            "| input | threads | overlap graph | Gbp | call s | Mbp/s | reading s | counting s "
            "| histograms s | graph s | peak RSS MB |\n" + "|---" * 11 + "|"
        )
        for t in results["throughput"]:
            phases = " | ".join(str(t.get(key, "-")) for key in PHASES)
            print(
                f"| {t['input']} | {t['threads']} | {'yes' if t.get('graph') else 'no'} "
                f"| {t['bases'] / 1e9:.2f} | {t['call_s']} | {t['mbp_per_s']} | {phases} "
                f"| {t['peak_rss_mb']} |"
            )


def split(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communities", default="set1,set2,simulated", help="[%(default)s]")
    parser.add_argument(
        "--tools",
        default="vaebin,article,lrbinner",
        help="[%(default)s]; also graph (default + --overlap-graph) and ceiling (species-level "
        "ceiling from the truth)",
    )
    parser.add_argument("--lrbinner", type=Path, help="LRBinner wrapper (skipped when absent)")
    parser.add_argument("--seeds", default="1,2,3", help="default-preset seeds [%(default)s]")
    parser.add_argument("--samples", default="1,3", help="samples per run [%(default)s]")
    parser.add_argument("--skip-build", action="store_true", help="use the built data as is")
    parser.add_argument("--throughput", action="store_true", help="time the read featurizer")
    parser.add_argument("--grid", action="store_true", help="parameter grid on tuning sets")
    parser.add_argument("--rerun", action="store_true", help="repeat runs already in reads.json")
    options = parser.parse_args(argv)
    communities = [COMMUNITIES[name] for name in split(options.communities)]
    tools = split(options.tools)
    seeds = [int(seed) for seed in split(options.seeds)]
    sample_counts = [int(count) for count in split(options.samples)]
    started = time.perf_counter()
    results = load_results()
    results["machine"] = machine_description()

    def record(key: str, make: Callable[[], dict[str, Any]]) -> None:
        if key in results["runs"] and not options.rerun:
            return
        log(f"run {key}")
        try:
            results["runs"][key] = make()
        except subprocess.CalledProcessError as error:
            tail = "\n".join((error.stderr or "").strip().splitlines()[-5:])
            log(f"run {key} FAILED (exit {error.returncode}):\n{tail}")
            return
        save_results(results)

    for community in communities:
        if not options.skip_build:
            build(community)
        for samples in sample_counts:
            if "vaebin" in tools:
                for seed in seeds:
                    key = run_key(community.name, samples, "default", seed)
                    record(key, partial(run_vaebin, community, samples, "default", seed, None))
            if "article" in tools:
                key = run_key(community.name, samples, "article", seeds[0])
                record(key, partial(run_vaebin, community, samples, "article", seeds[0], None))
            if "graph" in tools:
                for seed in seeds:
                    key = run_key(community.name, samples, "default-graph", seed)
                    record(
                        key,
                        partial(run_vaebin, community, samples, "default", seed, None, True),
                    )
            if "ceiling" in tools and community.name in SPECIES_GROUPS:
                key = run_key(community.name, samples, "ceiling", 0)
                record(key, partial(species_ceiling, community, samples))
        if "lrbinner" in tools and options.lrbinner is not None:
            if options.lrbinner.is_file():
                key = run_key(community.name, 1, "lrbinner", 0)
                record(key, partial(run_lrbinner, community, options.lrbinner))
            else:
                log(f"no LRBinner wrapper at {options.lrbinner}: skipped")
    if options.grid:
        for community in communities:
            if community.role != "tuning":
                continue
            for samples in sorted(sample_counts, reverse=True):
                for flag, values in GRID.items():
                    for value in values:
                        if value == GRID_DEFAULTS[flag]:
                            continue  # the default is the seed-1 default run
                        key = run_key(community.name, samples, "default", 1, f"{flag} {value}")
                        record(
                            key,
                            partial(run_vaebin, community, samples, "default", 1, (flag, value)),
                        )
    if options.throughput:
        results["throughput"] = throughput()
        save_results(results)
    results["last_wall_s"] = round(time.perf_counter() - started, 1)
    save_results(results)
    print_tables(results)
    log(f"wall time of this invocation: {results['last_wall_s']} s")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
