"""Binning benchmark (issue #6 item 9): vaebin-rs against VAMB 5.0.4 and MetaBAT2.

All tools bin the same contigs and BAMs of one seeded benchmark-scale community (32 genomes with
related models and strains, 4 samples, 22 M reads) in the same run, one after the other:

    python benchmarks/binning.py --setup-vamb     # once: benchmarks/envs/vamb with VAMB 5.0.4
    python benchmarks/binning.py --setup-semibin  # once, for --tools ...,semibin: SemiBin2 2.6.0
    python benchmarks/binning.py [--skip-simulate] [--tools vaebin,article,vamb,metabat2]
                                 [--seeds 1,2,3]

`--community debian` (and `debian2` to `debian5`: further independent genome sets) runs
the same comparison on a community the project did not generate: real genomes from Debian
packages (set 4: from PyPI sdists; set 5: genomes of sets 1-4 in new pairs), ART reads, a
MEGAHIT co-assembly and minimap2 mappings (benchmarks/debian_community.py);
its figures go into their own section of RESULTS.md. `--samples N` gives the tools only the first
N samples. The simulated community and sets 1 and 2 are tuning sets (defaults and thresholds
were chosen on them, benchmarks/dev/NOTES.md); sets 3, 4 and 5 are held out: nothing is tuned
on them.

`--leave-one-out` replaces the comparison with an ablation of vaebin-rs's clustering: per seed
one trained model (the comparison's `bin` run when there), then `vaebin-rs cluster` of its latent
means with every step on and with each step off in turn; the figures of every community measured
go into the `## Leave one step out` section (`--leave-one-out --report-only` writes it again).

Training is stochastic, so one seed can flatter or wrong any tool: every tool runs once per
seed of `--seeds` (1, 2 and 3 unless told), that seed passed as its own `--seed`; for each seed
the tools run one after the other, vaebin-rs and VAMB back to back. The community is another
matter: it is simulated once, with its own fixed seed (COMMUNITY_SEED), and cached.

SemiBin2 2.6.0 (self-supervised, with its own marker-gene reclustering; benchmarks/envs/semibin,
and Debian's bedtools, hmmer and prodigal) is a peer too, but it takes about 40 minutes and 14 GB
where the others take minutes, so it runs only when `--tools` names it.

Each tool's wall time includes its own abundance computation from the BAMs (VAMB through
pycoverm, MetaBAT2 through `jgi_summarize_bam_contig_depths`, rerun for every seed, vaebin-rs
through its Rust core), and peak RSS comes from `/usr/bin/time -v` (the larger of the two
commands of MetaBAT2). Bins are scored with `vaebin.evaluate.evaluate_bins` against the
simulator's CAMI truth. The figures over all seeds (NC genomes per seed and their mean, median
times, the largest peak RSS), one row per tool and seed, the machine and the bars go into the
`## Binning` section of benchmarks/RESULTS.md; every run's raw output, log and per-genome table
stay under benchmarks/data/binning-runs/seed<N>/ (`--report-only` reports them again).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from vaebin.evaluate import EvaluationResult, GenomeScore, evaluate_bins
from vaebin.io.cami import read_cami_binning, read_truth_lengths
from vaebin.io.clusters import read_clusters

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPOSITORY_DIR = BENCHMARKS_DIR.parent
COMMUNITY_DIR = BENCHMARKS_DIR / "data" / "community-benchmark"
RUNS_DIR = BENCHMARKS_DIR / "data" / "binning-runs"
COMMUNITY = "simulated"  # or a real one; select_community() sets the paths above and below
# Real-genome communities of benchmarks/debian_community.py: name -> its genome set.
REAL_COMMUNITIES = {"debian": 1, "debian2": 2, "debian3": 3, "debian4": 4, "debian5": 5}
# The protocol (RESULTS.md, "Binning"): the communities some default or threshold was chosen
# on (benchmarks/dev/NOTES.md) are tuning sets; a held-out set was never used to choose one.
COMMUNITY_ROLES = {
    "simulated": "tuning",
    "debian": "tuning",
    "debian2": "tuning",
    "debian3": "held out",
    "debian4": "held out",
    "debian5": "held out",
}
PROTOCOL_REFERENCE = 'protocol: "Tuning and held-out sets" above'
COMMUNITY_NAMES = {
    "simulated": "simulated benchmark community",
    "debian": "real genomes, set 1",
    "debian2": "real genomes, set 2",
    "debian3": "real genomes, set 3",
    "debian4": "real genomes, set 4 (13 species from PyPI sdists)",
    "debian5": "real genomes, set 5 (two sibling pairs at 95 % identity)",
}
# The folder the community is built in; COMMUNITY_DIR differs from it when --samples takes a
# subset of the samples (a folder of links to the contigs, the truth and the first BAMs).
SOURCE_DIR = COMMUNITY_DIR
SAMPLES: int | None = None
RESULTS_PATH = BENCHMARKS_DIR / "RESULTS.md"
SECTION_TITLE = "## Binning"
NOTES_TITLE = "### Notes"
VAMB_ENV_DIR = BENCHMARKS_DIR / "envs" / "vamb"
VAMB_VERSION = "5.0.4"
SEMIBIN_ENV_DIR = BENCHMARKS_DIR / "envs" / "semibin"
SEMIBIN_VERSION = "2.6.0"
# What SemiBin2 calls besides Python (Debian packages): coverage, marker genes, ORFs.
SEMIBIN_TOOLS = {"bedtools": "bedtools", "hmmsearch": "hmmer", "prodigal": "prodigal"}
# What vaebin-rs is built from, for the commit a run reports.
SOURCE_PATHS = ("python", "rust", "Cargo.toml", "pyproject.toml")

# The community is simulated once with its own seed; the tools run once per seed of SEEDS.
COMMUNITY_SEED = 1
SEEDS = (1, 2, 3)
THREADS = 2
MIN_CONTIG_BP = 2000
METABAT_MIN_CONTIG_BP = 2500  # metabat2's own default (and its floor is 1500)
MIN_BIN_BP = 200_000
# Another helper may be building the shared VAMB environment; how long to wait for it.
VAMB_SETUP_WAIT_SECONDS = 1800

# Also the order they run in: vaebin-rs and VAMB back to back, so they meet similar other load.
TOOL_ORDER = ("vaebin", "vamb", "article", "metabat2", "semibin")
# SemiBin2 takes about 40 min and 14 GB where the others take minutes (issue 15): only on request.
DEFAULT_TOOLS = ("vaebin", "vamb", "article", "metabat2")
TOOL_LABELS = {
    "vaebin": "vaebin-rs (default)",
    "article": "vaebin-rs (--preset article)",
    "vamb": f"VAMB {VAMB_VERSION}",
    "metabat2": "MetaBAT2",
    "semibin": f"SemiBin2 {SEMIBIN_VERSION} (self-supervised)",
}
# Columns of the quality table: (label, completeness above, purity above).
QUALITY_COLUMNS = (
    ("NC >90% compl. >95% pure", 0.9, 0.95),
    (">70% compl. >95% pure", 0.7, 0.95),
    (">70% compl. >90% pure", 0.7, 0.9),
    (">90% compl. >90% pure", 0.9, 0.9),
)


@dataclass(frozen=True)
class CommandCost:
    """Wall time and peak resident memory of one measured command."""

    argv: list[str]
    wall_seconds: float
    cpu_seconds: float
    """User plus system time, which other load on a shared machine changes less than wall time."""
    peak_rss_bytes: int


@dataclass(frozen=True)
class ToolRun:
    """One tool's measured commands with one seed, and its bins as contig -> bin."""

    tool: str
    seed: int
    commands: list[CommandCost]
    bins: dict[str, str]

    @property
    def wall_seconds(self) -> float:
        """Commands run one after the other, so their wall times add up."""
        return sum(command.wall_seconds for command in self.commands)

    @property
    def peak_rss_bytes(self) -> int:
        """The largest peak of its commands (they never run at the same time)."""
        return max(command.peak_rss_bytes for command in self.commands)

    @property
    def cpu_seconds(self) -> float:
        """User plus system time of all its commands."""
        return sum(command.cpu_seconds for command in self.commands)


# Runs and their scores by tool, then by seed (tools in TOOL_ORDER, seeds in the order asked).
Runs = dict[str, dict[int, ToolRun]]
Results = dict[str, dict[int, EvaluationResult]]


# ---------------------------------------------------------------------------------------------
# measuring


def _time_binary() -> str:
    path = shutil.which("time", path="/usr/bin:/bin") or ""
    if not path:
        sys.exit("binning.py: /usr/bin/time is missing; install it with `apt-get install time`")
    return path


def measure(argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> CommandCost:
    """Run `argv` under `/usr/bin/time -v`, its output into `log_path`; stop on failure."""
    report_path = log_path.with_suffix(".time")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"  $ {' '.join(argv)}", flush=True)
    with log_path.open("w") as log:
        completed = subprocess.run(
            [_time_binary(), "-v", "-o", str(report_path), *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPOSITORY_DIR,
        )
    if completed.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        sys.exit(
            f"binning.py: `{' '.join(argv)}` failed with exit code {completed.returncode}; "
            f"end of {log_path}:\n" + "\n".join(tail)
        )
    cost = read_time_report(report_path)
    print(
        f"    {cost.wall_seconds:.1f} s wall, {cost.cpu_seconds:.1f} s CPU, "
        f"peak RSS {cost.peak_rss_bytes / 1e6:.0f} MB",
        flush=True,
    )
    return cost


def read_time_report(path: Path) -> CommandCost:
    """The command, wall time, CPU time and peak RSS that `/usr/bin/time -v` wrote to `path`."""
    report = path.read_text() if path.is_file() else ""
    fields = {
        "command": r'Command being timed: "(.*)"',
        "wall": r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)",
        "user": r"User time \(seconds\): ([\d.]+)",
        "system": r"System time \(seconds\): ([\d.]+)",
        "peak_kib": r"Maximum resident set size \(kbytes\): (\d+)",
        "exit": r"Exit status: (\d+)",
    }
    found = {name: re.search(pattern, report) for name, pattern in fields.items()}
    values = {name: match.group(1) for name, match in found.items() if match is not None}
    if len(values) < len(fields) or values["exit"] != "0":
        sys.exit(f"binning.py: {path} is not the report of a command that completed")
    wall_seconds = 0.0
    for part in values["wall"].split(":"):  # [h:]mm:ss.ss
        wall_seconds = wall_seconds * 60 + float(part)
    return CommandCost(
        argv=values["command"].split(),
        wall_seconds=wall_seconds,
        cpu_seconds=float(values["user"]) + float(values["system"]),
        peak_rss_bytes=int(values["peak_kib"]) * 1024,
    )


def machine_description() -> dict[str, str]:
    """Cores, CPU model, memory, kernel, load and UTC date of this machine."""
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
            break
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu_model": cpu_model,
        "memory": f"{memory_kib / 1024**2:.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "load_average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ---------------------------------------------------------------------------------------------
# the community


def select_community(name: str, samples: int | None = None) -> None:
    """Point the benchmark at the simulated community or the Debian real-genome community, all
    its samples or only the first `samples` of them (their own runs and RESULTS.md section)."""
    global COMMUNITY, COMMUNITY_DIR, SOURCE_DIR, RUNS_DIR, SECTION_TITLE, SAMPLES
    COMMUNITY = name
    if name in REAL_COMMUNITIES:
        SOURCE_DIR = COMMUNITY_DIR = BENCHMARKS_DIR / "data" / f"community-{name}"
        RUNS_DIR = BENCHMARKS_DIR / "data" / f"binning-runs-{name}"
        SECTION_TITLE = "## Binning on real genomes"
        if name == "debian2":
            SECTION_TITLE += ", second genome set"
        elif name == "debian3":
            SECTION_TITLE += ", third genome set (held out)"
        elif name == "debian4":
            SECTION_TITLE += ", fourth genome set (held out)"
        elif name == "debian5":
            SECTION_TITLE += ", fifth genome set: siblings (held out)"
    SAMPLES = samples
    if samples is not None:
        suffix = f"{samples}-sample" if samples == 1 else f"{samples}-samples"
        COMMUNITY_DIR = SOURCE_DIR.with_name(f"{SOURCE_DIR.name}-{suffix}")
        RUNS_DIR = RUNS_DIR.with_name(f"{RUNS_DIR.name}-{suffix}")
        SECTION_TITLE += ", one sample" if samples == 1 else f", {samples} samples"


def link_sample_subset() -> None:
    """Fill COMMUNITY_DIR with links to the built community's contigs, truth and genome table
    and to its first SAMPLES BAM files (with their indexes): the tools see only those samples."""
    if SAMPLES is None:
        return
    bams = sorted(SOURCE_DIR.glob("*.bam"), key=_sample_order)
    if not 1 <= SAMPLES <= len(bams):
        sys.exit(f"binning.py: --samples {SAMPLES} but {SOURCE_DIR} has {len(bams)} samples")
    shutil.rmtree(COMMUNITY_DIR, ignore_errors=True)
    COMMUNITY_DIR.mkdir(parents=True)
    names = ["contigs.fna.gz", "truth.binning", "genomes.tsv", "samplesheet.csv"]
    names += [name for bam in bams[:SAMPLES] for name in (bam.name, f"{bam.name}.bai")]
    for name in names:
        (COMMUNITY_DIR / name).symlink_to(SOURCE_DIR / name)


def _sample_order(bam: Path) -> tuple[int, str]:
    """sample2.bam before sample10.bam."""
    digits = re.sub(r"\D", "", bam.stem)
    return (int(digits) if digits else 0, bam.name)


def seed_dir(seed: int) -> Path:
    """Where the runs with tool seed `seed` keep their outputs, logs, time reports and scores."""
    return RUNS_DIR / f"seed{seed}"


def community_ready() -> bool:
    """The simulator writes samplesheet.csv last, so its presence means a complete community."""
    return (SOURCE_DIR / "samplesheet.csv").is_file() and (SOURCE_DIR / "truth.binning").is_file()


def simulate_community() -> None:
    """Simulate the seeded benchmark community unless it is already cached."""
    if community_ready():
        print(f"community: cached in {SOURCE_DIR}")
        return
    if COMMUNITY in REAL_COMMUNITIES:
        import debian_community  # benchmarks/ is on sys.path when this script runs

        debian_community.build(SOURCE_DIR, genome_set=REAL_COMMUNITIES[COMMUNITY])
        return
    print(f"community: simulating into {SOURCE_DIR} (a few minutes)")
    cost = measure(
        [
            str(_vaebin_executable()),
            "simulate",
            "--preset",
            "benchmark",
            "--seed",
            str(COMMUNITY_SEED),
            "--threads",
            str(THREADS),
            "--outdir",
            str(SOURCE_DIR),
        ],
        RUNS_DIR / "simulate.log",
    )
    print(f"community: simulated in {cost.wall_seconds:.0f} s")


def community_bams() -> list[Path]:
    """The per-sample BAM files of the community, in sample order."""
    bams = sorted(COMMUNITY_DIR.glob("*.bam"), key=_sample_order)
    if not bams:
        sys.exit(f"binning.py: no BAM files in {COMMUNITY_DIR}")
    return bams


# ---------------------------------------------------------------------------------------------
# VAMB's environment


def _vamb_executable() -> Path:
    return VAMB_ENV_DIR / "bin" / "vamb"


def _vamb_python() -> Path:
    return VAMB_ENV_DIR / "bin" / "python"


def vamb_works() -> bool:
    """VAMB of the pinned version imports and its command line answers."""
    probe = (
        "import importlib.metadata, vamb; "
        f"assert importlib.metadata.version('vamb') == {VAMB_VERSION!r}"
    )
    if not (_vamb_executable().exists() and _vamb_python().exists()):
        return False
    imported = subprocess.run([str(_vamb_python()), "-c", probe], capture_output=True)
    if imported.returncode != 0:
        return False
    answered = subprocess.run(
        [str(_vamb_executable()), "bin", "default", "--help"], capture_output=True
    )
    return answered.returncode == 0


def setup_vamb() -> None:
    """Make benchmarks/envs/vamb hold VAMB 5.0.4 with its pins and exactly one torch.

    The environment is shared with the composition benchmark: a working one is reused, and one
    that is still being built (folder there, no vamb yet) is waited for, never built twice.
    """
    if vamb_works():
        print(f"VAMB: {VAMB_ENV_DIR} works; reusing it")
        return
    if VAMB_ENV_DIR.exists():
        print(f"VAMB: {VAMB_ENV_DIR} exists without a working vamb; waiting for its builder")
        deadline = time.monotonic() + VAMB_SETUP_WAIT_SECONDS
        while time.monotonic() < deadline:
            if vamb_works():
                print("VAMB: ready")
                return
            time.sleep(30)
        print("VAMB: still not working after the wait; completing the environment here")
    else:
        VAMB_ENV_DIR.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VAMB_ENV_DIR)], check=True)
    pip = [str(_vamb_python()), "-m", "pip", "install"]
    # One torch only: the main environment's version goes in first, then VAMB without its
    # dependencies, then every pinned dependency of VAMB except torch.
    torch_version = _installed_version("torch")
    subprocess.run([*pip, f"torch=={torch_version}"], check=True)
    subprocess.run([*pip, "--no-deps", f"vamb=={VAMB_VERSION}"], check=True)
    subprocess.run([*pip, *vamb_requirements_without_torch()], check=True)
    if not vamb_works():
        sys.exit(f"binning.py: VAMB {VAMB_VERSION} does not work in {VAMB_ENV_DIR}")
    print(f"VAMB: ready in {VAMB_ENV_DIR}")


def _installed_version(package: str) -> str:
    from importlib.metadata import version

    return version(package).split("+")[0]


def vamb_requirements_without_torch() -> list[str]:
    """VAMB's pinned run-time requirements from its installed METADATA, torch left out."""
    script = "import importlib.metadata as m, json; print(json.dumps(m.requires('vamb')))"
    listed = subprocess.run(
        [str(_vamb_python()), "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    requirements = []
    for requirement in json.loads(listed.stdout) or []:
        if "extra ==" in requirement:
            continue
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        if name is None or name.group().lower() == "torch":
            continue
        requirements.append(requirement.split(";")[0].strip())
    return requirements


def _environment_versions(python: Path, packages: Sequence[str]) -> str:
    script = (
        "import importlib.metadata as m, sys; "
        f"print(', '.join(f'{{p}} {{m.version(p)}}' for p in {list(packages)!r}))"
    )
    completed = subprocess.run([str(python), "-c", script], capture_output=True, text=True)
    return completed.stdout.strip() if completed.returncode == 0 else "unknown"


# ---------------------------------------------------------------------------------------------
# SemiBin2's environment


def _semibin_executable() -> Path:
    return SEMIBIN_ENV_DIR / "bin" / "SemiBin2"


def _semibin_python() -> Path:
    return SEMIBIN_ENV_DIR / "bin" / "python"


def semibin_works() -> bool:
    """SemiBin2 of the pinned version imports and the programs it calls are on PATH."""
    probe = (
        "import importlib.metadata, SemiBin; "
        f"assert importlib.metadata.version('semibin') == {SEMIBIN_VERSION!r}"
    )
    if not (_semibin_executable().exists() and _semibin_python().exists()):
        return False
    if any(shutil.which(tool) is None for tool in SEMIBIN_TOOLS):
        return False
    return (
        subprocess.run([str(_semibin_python()), "-c", probe], capture_output=True).returncode == 0
    )


def setup_semibin() -> None:
    """Make benchmarks/envs/semibin hold SemiBin2 2.6.0 with the main environment's torch.

    Its other programs come from Debian (SEMIBIN_TOOLS); this says which to install."""
    missing = sorted({package for tool, package in SEMIBIN_TOOLS.items() if not shutil.which(tool)})
    if missing:
        sys.exit(f"binning.py: SemiBin2 needs `apt-get install {' '.join(missing)}`")
    if semibin_works():
        print(f"SemiBin2: {SEMIBIN_ENV_DIR} works; reusing it")
        return
    if not _semibin_python().exists():
        SEMIBIN_ENV_DIR.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(SEMIBIN_ENV_DIR)], check=True)
    pip = [str(_semibin_python()), "-m", "pip", "install"]
    # The main environment's torch first (from pip's cache), so SemiBin2 does not pull another.
    subprocess.run([*pip, f"torch=={_installed_version('torch')}"], check=True)
    subprocess.run([*pip, f"semibin=={SEMIBIN_VERSION}"], check=True)
    if not semibin_works():
        sys.exit(f"binning.py: SemiBin2 {SEMIBIN_VERSION} does not work in {SEMIBIN_ENV_DIR}")
    print(f"SemiBin2: ready in {SEMIBIN_ENV_DIR}")


# ---------------------------------------------------------------------------------------------
# the tools


def _vaebin_executable() -> Path:
    executable = Path(sys.executable).parent / "vaebin-rs"
    if not executable.exists():
        sys.exit(f"binning.py: {executable} is missing; run from the project's .venv")
    return executable


def run_vaebin(tool: str, seed: int) -> ToolRun:
    """vaebin-rs `bin` end to end from the BAMs, with the default or the article preset."""
    outdir = seed_dir(seed) / tool
    shutil.rmtree(outdir, ignore_errors=True)
    preset = "article" if tool == "article" else "default"
    argv = [
        str(_vaebin_executable()),
        "bin",
        "--contigs",
        str(COMMUNITY_DIR / "contigs.fna.gz"),
        "--bamdir",
        str(COMMUNITY_DIR),
        "--outdir",
        str(outdir),
        "--preset",
        preset,
        "--min-contig-len",
        str(MIN_CONTIG_BP),
        "--min-bin-size",
        str(MIN_BIN_BP),
        "--threads",
        str(THREADS),
        "--seed",
        str(seed),
    ]
    revision = source_revision()
    cost = measure(argv, seed_dir(seed) / f"{tool}.log")
    (seed_dir(seed) / f"{tool}.revision").write_text(revision + "\n")
    return ToolRun(tool, seed, [cost], collect_bins(tool, seed))


def source_revision() -> str:
    """HEAD's short commit, with -dirty when the package's sources differ from it."""

    def git(*arguments: str) -> str:
        completed = subprocess.run(
            ["git", *arguments], capture_output=True, text=True, cwd=REPOSITORY_DIR
        )
        return completed.stdout.strip() if completed.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", *SOURCE_PATHS)
    return f"{commit}-dirty" if changed else commit


def run_vamb(seed: int) -> ToolRun:
    """VAMB's default contig workflow from the BAMs; bins are the clusters it writes as FASTA."""
    if not vamb_works():
        sys.exit("binning.py: VAMB is not set up; run `python benchmarks/binning.py --setup-vamb`")
    outdir = seed_dir(seed) / "vamb"
    shutil.rmtree(outdir, ignore_errors=True)  # VAMB refuses an existing output folder
    argv = [
        str(_vamb_executable()),
        "bin",
        "default",
        "--outdir",
        str(outdir),
        "--fasta",
        str(COMMUNITY_DIR / "contigs.fna.gz"),
        "--bamdir",
        str(COMMUNITY_DIR),
        "-m",
        str(MIN_CONTIG_BP),
        "-p",
        str(THREADS),
        "--seed",
        str(seed),
        "--minfasta",
        str(MIN_BIN_BP),
    ]
    cost = measure(argv, seed_dir(seed) / "vamb.log")
    return ToolRun("vamb", seed, [cost], collect_bins("vamb", seed))


def run_metabat2(seed: int) -> ToolRun:
    """jgi_summarize_bam_contig_depths, then metabat2; bins are its FASTA files.

    The depths do not depend on the seed, but they are part of MetaBAT2's cost, so every seed
    computes them again.
    """
    outdir = seed_dir(seed) / "metabat2"
    shutil.rmtree(outdir, ignore_errors=True)
    (outdir / "bins").mkdir(parents=True)
    depth_path = outdir / "depth.txt"
    depth_cost = measure(
        [
            "jgi_summarize_bam_contig_depths",
            "--outputDepth",
            str(depth_path),
            *map(str, community_bams()),
        ],
        seed_dir(seed) / "metabat2-depth.log",
    )
    bin_cost = measure(
        [
            "metabat2",
            "-i",
            str(COMMUNITY_DIR / "contigs.fna.gz"),
            "-a",
            str(depth_path),
            "-o",
            str(outdir / "bins" / "bin"),
            "-m",
            str(METABAT_MIN_CONTIG_BP),
            "-s",
            str(MIN_BIN_BP),
            "-t",
            str(THREADS),
            "--seed",
            str(seed),
        ],
        seed_dir(seed) / "metabat2.log",
    )
    return ToolRun("metabat2", seed, [depth_cost, bin_cost], collect_bins("metabat2", seed))


def run_semibin(seed: int) -> ToolRun:
    """SemiBin2's self-supervised co-assembly workflow from the BAMs (its own abundances,
    its own marker-gene reclustering); bins are the FASTA files it writes."""
    if not semibin_works():
        sys.exit(
            "binning.py: SemiBin2 is not set up; run `python benchmarks/binning.py --setup-semibin`"
        )
    outdir = seed_dir(seed) / "semibin"
    shutil.rmtree(outdir, ignore_errors=True)
    argv = [
        str(_semibin_executable()),
        "single_easy_bin",
        "--self-supervised",
        "-i",
        str(COMMUNITY_DIR / "contigs.fna.gz"),
        "-b",
        *map(str, community_bams()),
        "-o",
        str(outdir),
        "--min-len",
        str(MIN_CONTIG_BP),
        "--minfasta-kbs",
        str(MIN_BIN_BP // 1000),
        "--threads",
        str(THREADS),
        "--random-seed",
        str(seed),
        "--engine",
        "cpu",
        "--compression",
        "none",
    ]
    # SemiBin2's Python and its programs (bedtools, hmmsearch) on PATH.
    env = {**os.environ, "PATH": f"{SEMIBIN_ENV_DIR / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    cost = measure(argv, seed_dir(seed) / "semibin.log", env=env)
    return ToolRun("semibin", seed, [cost], collect_bins("semibin", seed))


# The `/usr/bin/time -v` reports of each tool's commands in its seed's folder, in run order.
TIME_REPORTS = {
    "vaebin": ("vaebin.time",),
    "article": ("article.time",),
    "vamb": ("vamb.time",),
    "metabat2": ("metabat2-depth.time", "metabat2.time"),
    "semibin": ("semibin.time",),
}


def collect_bins(tool: str, seed: int) -> dict[str, str]:
    """contig -> bin from the output `tool` left in its folder for `seed`."""
    outdir = seed_dir(seed) / tool
    if tool in ("vaebin", "article"):
        return read_clusters(outdir / "clusters.tsv")
    if tool == "vamb":
        clusters = read_clusters(outdir / "vae_clusters_unsplit.tsv")
        # VAMB's table lists every cluster, however small; its FASTA output holds those of at
        # least --minfasta bp, which is the set the other tools report.
        written = {path.name.removesuffix(".fna") for path in (outdir / "bins").glob("*.fna")}
        return {contig: name for contig, name in clusters.items() if name in written}
    if tool == "semibin":
        return read_fasta_bins(outdir / "output_bins")
    return read_fasta_bins(outdir / "bins")


def reload_run(tool: str, seed: int) -> ToolRun:
    """A tool's last run with `seed` as it is on disk: its time reports and its bins."""
    if not (seed_dir(seed) / tool).is_dir():
        sys.exit(f"binning.py: no {tool} run with seed {seed} in {seed_dir(seed)}; run it first")
    costs = [read_time_report(seed_dir(seed) / name) for name in TIME_REPORTS[tool]]
    return ToolRun(tool, seed, costs, collect_bins(tool, seed))


def read_fasta_bins(directory: Path) -> dict[str, str]:
    """contig -> bin from one FASTA file per bin (the bin is the file name less `.fa`)."""
    assignments: dict[str, str] = {}
    for path in sorted(directory.glob("*.fa")):
        bin_name = path.name.removesuffix(".fa")
        with path.open() as handle:
            for line in handle:
                if line.startswith(">"):
                    assignments[line[1:].split()[0]] = bin_name
    return assignments


# Each runs its tool with the seed it is given.
RUNNERS: dict[str, Callable[[int], ToolRun]] = {
    "vaebin": lambda seed: run_vaebin("vaebin", seed),
    "article": lambda seed: run_vaebin("article", seed),
    "vamb": run_vamb,
    "metabat2": run_metabat2,
    "semibin": run_semibin,
}


# ---------------------------------------------------------------------------------------------
# leave one step out

LEAVE_ONE_OUT_TITLE = "## Leave one step out"
# Each clustering step (python/vaebin/cluster.py, CLUSTER_STEPS) that can be switched off, and
# split_linked_groups, a switch inside recluster, as the --cluster-param setting that does it.
LEFT_OUT_STEPS = (
    ("recluster", "recluster=false"),
    ("split_linked_groups", "split_linked_groups=false"),
    ("merge_same_depth", "merge_same_depth=false"),
    ("group_leftovers", "group_leftovers=false"),
    ("long_contig_bins", "long_contig_bin_bp=none"),
    ("assign_leftovers", "assign_leftovers=false"),
    ("split_mixed_depth", "split_mixed_depth=false"),
)
ALL_STEPS = "none (every step)"
MEDIUM_QUALITY = (0.5, 0.9)  # >50% completeness, >90% purity (CheckM's <10% contamination)


def trained_run(seed: int) -> Path:
    """vaebin-rs default's `bin` folder with `seed` (latent means, features, bins): the one
    the comparison left, else a new `bin` run. Training is the same for every variant."""
    outdir = seed_dir(seed) / "vaebin"
    needed = ("latent.npy", "latent_contigs.tsv", "features", "clusters.tsv")
    if all((outdir / name).exists() for name in needed):
        print(f"vaebin-rs default, seed {seed}: reusing the trained run in {outdir}", flush=True)
    else:
        print(f"vaebin-rs default, seed {seed}:", flush=True)
        run_vaebin("vaebin", seed)
    return outdir


def recluster_without(seed: int, trained: Path, step: str, setting: str | None) -> dict:
    """`vaebin-rs cluster` of the trained run's latent means with `setting` (None: every step
    on), scored against the truth."""
    outdir = seed_dir(seed) / "leave-one-out" / step
    shutil.rmtree(outdir, ignore_errors=True)
    argv = [
        str(_vaebin_executable()),
        "cluster",
        "--latent",
        str(trained),
        "--features",
        str(trained / "features"),
        "--contigs",
        str(COMMUNITY_DIR / "contigs.fna.gz"),
        "--outdir",
        str(outdir),
        "--no-fasta",
        "--min-bin-size",
        str(MIN_BIN_BP),
        "--threads",
        str(THREADS),
    ]
    if setting is not None:
        argv += ["--cluster-param", setting]
    cost = measure(argv, outdir.with_name(f"{step}.log"))
    result = evaluate_bins(*community_truth(), read_clusters(outdir / "clusters.tsv"))
    (outdir.with_name(f"{step}.evaluation.txt")).write_text(result.table() + "\n")
    return {
        "near_complete": result.near_complete,
        "medium_quality": result.count(*MEDIUM_QUALITY),
        "ari": result.adjusted_rand_index,
        "binned_percent": _binned_percent(result),
        "bins": result.n_bins,
        "cluster_seconds": cost.wall_seconds,
    }


def run_leave_one_out(seeds: Sequence[int]) -> None:
    """Every step off in turn on one trained model per seed; figures to
    RUNS_DIR/leave-one-out.json and the RESULTS.md section of all communities measured."""
    variants: dict[str, dict[int, dict]] = {ALL_STEPS: {}}
    variants.update({step: {} for step, _ in LEFT_OUT_STEPS})
    binned: dict[int, int] = {}
    for seed in seeds:
        trained = trained_run(seed)
        binned[seed] = evaluate_bins(
            *community_truth(), read_clusters(trained / "clusters.tsv")
        ).near_complete
        for step, setting in ((ALL_STEPS, None), *LEFT_OUT_STEPS):
            print(f"  without {step}, seed {seed}:", flush=True)
            variants[step][seed] = recluster_without(
                seed, trained, "all" if setting is None else step, setting
            )
    record = {
        "community": COMMUNITY,
        "role": COMMUNITY_ROLES[COMMUNITY],
        "seeds": list(seeds),
        "bin_near_complete": binned,
        "revision": source_revision(),
        "date_utc": machine_description()["date_utc"],
        "variants": variants,
    }
    (RUNS_DIR / "leave-one-out.json").write_text(json.dumps(record, indent=2) + "\n")
    write_leave_one_out_section()


def leave_one_out_records() -> list[dict]:
    """The leave-one-out figures of every community measured so far, tuning sets first."""
    records = []
    for name in sorted(COMMUNITY_ROLES, key=lambda n: (COMMUNITY_ROLES[n] != "tuning", n)):
        folder = "binning-runs" if name == "simulated" else f"binning-runs-{name}"
        path = BENCHMARKS_DIR / "data" / folder / "leave-one-out.json"
        if path.is_file():
            records.append(json.loads(path.read_text()))
    return records


def leave_one_out_table(record: dict) -> list[str]:
    """Markdown rows: each variant's figures, means over the seeds, NC change against all on."""
    seeds = record["seeds"]
    base = record["variants"][ALL_STEPS]
    lines = [
        f"| step off | NC per seed ({' / '.join(map(str, seeds))}) | NC, mean | NC change "
        "| >50% compl. >90% pure, mean | ARI (bp), mean | binned bp, mean | bins, mean |",
        "|---" * 8 + "|",
    ]
    for step, by_seed in record["variants"].items():
        figures = [by_seed[str(seed)] for seed in seeds]

        def mean(key: str, figures: list[dict] = figures) -> float:
            return statistics.fmean(figure[key] for figure in figures)

        change = statistics.fmean(
            by_seed[str(seed)]["near_complete"] - base[str(seed)]["near_complete"] for seed in seeds
        )
        lines.append(
            f"| {step if step == ALL_STEPS else f'`{step}`'} "
            f"| {' / '.join(str(f['near_complete']) for f in figures)} "
            f"| {mean('near_complete'):.1f} | {'-' if step == ALL_STEPS else f'{change:+.1f}'} "
            f"| {mean('medium_quality'):.1f} | {mean('ari'):.3f} "
            f"| {mean('binned_percent'):.1f}% | {mean('bins'):.1f} |"
        )
    return lines


def write_leave_one_out_section() -> None:
    """The "Leave one step out" section of RESULTS.md from every community's figures."""
    settings = ", ".join(f"`{step}`: `{setting}`" for step, setting in LEFT_OUT_STEPS)
    body = [
        "`python benchmarks/binning.py --leave-one-out --community NAME` (issue 15 item 3). "
        "For each seed vaebin-rs default is trained once (`vaebin-rs bin`, the run of the "
        "tool comparison when it is there), then its saved latent means are clustered again "
        "with `vaebin-rs cluster --features` (the depths of `bin`) with every step on and "
        "with each step off in turn through `--cluster-param`: "
        f"{settings}. Training is identical across a seed's variants, so the differences are "
        "the step's alone. NC = near-complete (>90% completeness, >95% purity); the next "
        "column counts genomes whose best bin is >50% complete and >90% pure (medium quality "
        "in CheckM's terms, <10% contamination); `vaebin.evaluate.evaluate_bins`, bp-weighted. "
        "A step earns its place where switching it off loses NC genomes on a held-out set.",
        "",
    ]
    for record in leave_one_out_records():
        name = record["community"]
        role = record["role"]
        why = (
            "held out: no default or threshold was chosen on it"
            if role == "held out"
            else "tuning: thresholds were chosen on it (benchmarks/dev/NOTES.md), so a step "
            "looks better here than it may be"
        )
        same = all(
            record["bin_near_complete"][str(seed)]
            == record["variants"][ALL_STEPS][str(seed)]["near_complete"]
            for seed in record["seeds"]
        )
        body += [
            f"### {COMMUNITY_NAMES[name]} (`--community {name}`), {role}",
            "",
            f"Role: {why}. Commit {record['revision']}, measured {record['date_utc']}; "
            "re-clustering the saved latents with every step on gives "
            + (
                "the NC genomes of `bin` itself with every seed."
                if same
                else "NC genomes that differ from `bin`'s ("
                + " / ".join(str(v) for v in record["bin_near_complete"].values())
                + "): `cluster` and `bin` do not cluster alike."
            ),
            "",
            *leave_one_out_table(record),
            "",
        ]
    write_section(body, LEAVE_ONE_OUT_TITLE)
    print(f"wrote the {LEAVE_ONE_OUT_TITLE!r} section of {RESULTS_PATH}")


# ---------------------------------------------------------------------------------------------
# scoring and the report


def score(run: ToolRun) -> EvaluationResult:
    """Bins of `run` against the community's truth, bp-weighted."""
    result = evaluate_bins(*community_truth(), run.bins)
    (seed_dir(run.seed) / f"{run.tool}.evaluation.txt").write_text(result.table() + "\n")
    (seed_dir(run.seed) / f"{run.tool}.evaluation.json").write_text(result.to_json() + "\n")
    return result


def _megabytes(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:,.0f}"


def _binned_percent(result: EvaluationResult) -> float:
    return 100 * result.binned_bp / max(result.total_bp, 1)


def _per_seed(values: dict[int, int]) -> str:
    """Values of the seeds in their order, as `13 / 13 / 12`."""
    return " / ".join(str(value) for value in values.values())


def _verdict(passed: bool) -> str:
    return f"**{'PASS' if passed else 'FAIL'}**"


def mean_near_complete(results: dict[int, EvaluationResult]) -> float:
    """Near-complete genomes of one tool, averaged over its seeds."""
    return statistics.fmean(result.near_complete for result in results.values())


@dataclass(frozen=True)
class Summary:
    """One tool's figures over all its seeds, as the bars compare them."""

    near_complete: dict[int, int]
    """Near-complete genomes with each seed."""
    mean_near_complete: float
    wall_seconds: float
    """Median over the seeds."""
    cpu_seconds: float
    """Median over the seeds."""
    peak_rss_bytes: int
    """The largest over the seeds."""


def summarize(runs: dict[int, ToolRun], results: dict[int, EvaluationResult]) -> Summary:
    """The figures of a tool's runs and scores over all its seeds."""
    return Summary(
        near_complete={seed: result.near_complete for seed, result in results.items()},
        mean_near_complete=mean_near_complete(results),
        wall_seconds=statistics.median(run.wall_seconds for run in runs.values()),
        cpu_seconds=statistics.median(run.cpu_seconds for run in runs.values()),
        peak_rss_bytes=max(run.peak_rss_bytes for run in runs.values()),
    )


def summary_table(runs: Runs, results: Results, seeds: Sequence[int]) -> list[str]:
    """Markdown rows: one per tool, its figures over all seeds."""
    means = " | ".join(f"{label}, mean" for label, _, _ in QUALITY_COLUMNS[1:])
    lines = [
        f"| tool | NC per seed ({' / '.join(map(str, seeds))}) | NC, mean | {means} "
        "| ARI (bp), mean | bins, mean | binned bp, mean | wall time, median "
        "| CPU time, median | peak RSS, max |",
        "|---" * (len(QUALITY_COLUMNS) + 8) + "|",
    ]
    for tool, by_seed in runs.items():
        scores = list(results[tool].values())
        summary = summarize(by_seed, results[tool])
        counts = " | ".join(
            f"{statistics.fmean(result.count(c, p) for result in scores):.1f}"
            for _, c, p in QUALITY_COLUMNS[1:]
        )
        ari = statistics.fmean(result.adjusted_rand_index for result in scores)
        bins = statistics.fmean(result.n_bins for result in scores)
        binned = statistics.fmean(_binned_percent(result) for result in scores)
        only = "" if list(by_seed) == list(seeds) else f" (seeds {', '.join(map(str, by_seed))})"
        lines.append(
            f"| {TOOL_LABELS[tool]}{only} | {_per_seed(summary.near_complete)} "
            f"| {summary.mean_near_complete:.1f} | {counts} | {ari:.3f} | {bins:.1f} "
            f"| {binned:.1f}% | {summary.wall_seconds:.0f} s | {summary.cpu_seconds:.0f} s "
            f"| {_megabytes(summary.peak_rss_bytes)} MB |"
        )
    return lines


def seed_table(runs: Runs, results: Results) -> list[str]:
    """Markdown rows: one per tool and seed, quality then cost."""
    quality_headers = " | ".join(label for label, _, _ in QUALITY_COLUMNS)
    lines = [
        f"| tool | seed | {quality_headers} | ARI (bp) | bins | binned bp | wall time "
        "| CPU time | peak RSS |",
        "|---" * (len(QUALITY_COLUMNS) + 8) + "|",
    ]
    for tool, by_seed in runs.items():
        for seed, run in by_seed.items():
            result = results[tool][seed]
            counts = " | ".join(str(result.count(c, p)) for _, c, p in QUALITY_COLUMNS)
            if len(run.commands) > 1:
                rss = " + ".join(_megabytes(c.peak_rss_bytes) for c in run.commands)
                rss = f"{_megabytes(run.peak_rss_bytes)} MB (max of {rss})"
                wall = " + ".join(f"{c.wall_seconds:.0f}" for c in run.commands)
                wall = f"{run.wall_seconds:.0f} s ({wall})"
            else:
                rss = f"{_megabytes(run.peak_rss_bytes)} MB"
                wall = f"{run.wall_seconds:.0f} s"
            lines.append(
                f"| {TOOL_LABELS[tool]} | {seed} | {counts} | {result.adjusted_rand_index:.3f} | "
                f"{result.n_bins} | {_binned_percent(result):.1f}% | {wall} "
                f"| {run.cpu_seconds:.0f} s | {rss} |"
            )
    return lines


def bar_lines(runs: Runs, results: Results) -> list[str]:
    """The bars of the issue, each with its figures and PASS/FAIL (when its tools ran).

    Over all seeds: the mean of the NC genomes (with how the seeds compare one by one), the
    median wall time and the largest peak RSS.
    """
    if "vaebin" not in runs:
        return []
    summaries = {tool: summarize(by_seed, results[tool]) for tool, by_seed in runs.items()}
    ours = summaries["vaebin"]
    lines: list[str] = []
    verdicts: list[bool] = []
    for peer in ("vamb", "semibin", "metabat2", "article"):
        if peer not in summaries:
            continue
        theirs = summaries[peer]
        # Issue 15: at least as many as SemiBin2 (at a fraction of its time), more than others.
        relation = ">=" if peer == "semibin" else ">"
        passed = (
            ours.mean_near_complete >= theirs.mean_near_complete
            if peer == "semibin"
            else ours.mean_near_complete > theirs.mean_near_complete
        )
        verdicts.append(passed)
        same = [seed for seed in ours.near_complete if seed in theirs.near_complete]
        # +1: vaebin-rs had more NC genomes than the peer with that seed, 0 as many, -1 fewer.
        signs = Counter(
            (ours.near_complete[seed] > theirs.near_complete[seed])
            - (ours.near_complete[seed] < theirs.near_complete[seed])
            for seed in same
        )
        lines.append(
            f"- near-complete genomes, mean over seeds, vaebin-rs default "
            f"({ours.mean_near_complete:.1f}: {_per_seed(ours.near_complete)}) {relation} "
            f"{TOOL_LABELS[peer]} ({theirs.mean_near_complete:.1f}: "
            f"{_per_seed(theirs.near_complete)}): {_verdict(passed)}; with the same seed "
            f"vaebin-rs default had more in {signs[1]}, as many in {signs[0]} and fewer in "
            f"{signs[-1]} of {len(same)} seeds"
        )
    if "vamb" in summaries:
        vamb = summaries["vamb"]
        time_ratio = ours.wall_seconds / vamb.wall_seconds
        rss_ratio = ours.peak_rss_bytes / vamb.peak_rss_bytes
        cpu_ratio = ours.cpu_seconds / vamb.cpu_seconds
        verdicts += [time_ratio <= 1, rss_ratio <= 1]
        lines += [
            f"- wall time (median over seeds), vaebin-rs / VAMB = {ours.wall_seconds:.0f} s / "
            f"{vamb.wall_seconds:.0f} s = {time_ratio:.2f} (bar <= 1): "
            f"{_verdict(time_ratio <= 1)}",
            f"- peak RSS (largest over seeds), vaebin-rs / VAMB = "
            f"{_megabytes(ours.peak_rss_bytes)} MB / {_megabytes(vamb.peak_rss_bytes)} MB = "
            f"{rss_ratio:.2f} (bar <= 1): {_verdict(rss_ratio <= 1)}",
            f"- (not a bar) CPU time (median over seeds), vaebin-rs / VAMB = "
            f"{ours.cpu_seconds:.0f} s / {vamb.cpu_seconds:.0f} s = {cpu_ratio:.2f}",
        ]
    lines.append(f"- {sum(verdicts)} of {len(verdicts)} bars pass.")
    return lines


def genome_origin() -> str:
    """Where the real community's genomes come from (set 4: PyPI sdists)."""
    if REAL_COMMUNITIES.get(COMMUNITY) == 4:
        return "the test data of PyPI sdists"
    return "Debian packages"


def command_lines(seeds: Sequence[int]) -> list[str]:
    """How each tool was invoked, paths shortened to the community folder, tool seeds as S."""
    community = "$COMMUNITY"
    if COMMUNITY in REAL_COMMUNITIES:
        made = (
            "- community: `python benchmarks/debian_community.py --set "
            f"{REAL_COMMUNITIES[COMMUNITY]} --outdir $COMMUNITY` (real "
            f"genomes from {genome_origin()}, ART reads, MEGAHIT co-assembly, minimap2 `-ax sr` "
            "BAMs, truth from minimap2 `-x asm10`; its own fixed seed; cached between runs)"
        )
    else:
        made = (
            f"- community: `vaebin-rs simulate --preset benchmark --seed {COMMUNITY_SEED} "
            f"--outdir {community}` (its seed fixed whatever the tool seeds; cached between "
            "runs)"
        )
    return [
        f"Commands, S being each tool seed in turn ({', '.join(map(str, seeds))}):",
        made,
        f"- vaebin-rs: `vaebin-rs bin --contigs {community}/contigs.fna.gz --bamdir {community} "
        f"--outdir OUT [--preset article] --min-contig-len {MIN_CONTIG_BP} "
        f"--min-bin-size {MIN_BIN_BP} --threads {THREADS} --seed S` (coverage from the BAMs "
        "in its Rust core; bins as FASTA)",
        f"- VAMB: `vamb bin default --outdir OUT --fasta {community}/contigs.fna.gz "
        f"--bamdir {community} -m {MIN_CONTIG_BP} -p {THREADS} --seed S "
        f"--minfasta {MIN_BIN_BP}` (abundance from the BAMs through pycoverm; scored on the "
        "clusters it writes as FASTA)",
        f"- MetaBAT2: `jgi_summarize_bam_contig_depths --outputDepth depth.txt {community}/*.bam` "
        f"then `metabat2 -i {community}/contigs.fna.gz -a depth.txt -o OUT/bin "
        f"-m {METABAT_MIN_CONTIG_BP} -s {MIN_BIN_BP} -t {THREADS} --seed S` (depths computed "
        "again for every seed)",
        f"- SemiBin2 (when run): `SemiBin2 single_easy_bin --self-supervised -i "
        f"{community}/contigs.fna.gz -b {community}/*.bam -o OUT --min-len {MIN_CONTIG_BP} "
        f"--minfasta-kbs {MIN_BIN_BP // 1000} --threads {THREADS} --random-seed S --engine cpu "
        "--compression none` (abundance from the BAMs through bedtools; its own marker-gene "
        "reclustering; bins as FASTA)",
    ]


def tool_versions(runs: Runs) -> str:
    """Versions of the tools that ran, for the report."""
    parts = []
    if "vaebin" in runs or "article" in runs:
        completed = subprocess.run(
            [str(_vaebin_executable()), "--version"], capture_output=True, text=True
        )
        paths = [
            seed_dir(seed) / f"{tool}.revision"
            for tool in ("vaebin", "article")
            for seed in runs.get(tool, {})
        ]
        revisions = {path.read_text().strip() for path in paths if path.is_file()}
        revision = ", ".join(sorted(revisions)) or "unknown"
        parts.append(f"{completed.stdout.strip()} at commit {revision}")
        parts.append(f"torch {_installed_version('torch')}")
    if "vamb" in runs:
        versions = _environment_versions(_vamb_python(), ("vamb", "torch", "numpy", "pycoverm"))
        parts.append(f"VAMB env: {versions}")
    if "metabat2" in runs:
        completed = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "metabat"], capture_output=True, text=True
        )
        parts.append(f"MetaBAT2 (Debian metabat {completed.stdout.strip() or 'unknown'})")
    if "semibin" in runs:
        versions = _environment_versions(_semibin_python(), ("semibin", "torch", "numpy"))
        parts.append(f"SemiBin2 env: {versions}")
    return "; ".join(parts)


def write_section(body: list[str], title: str | None = None) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md (or the one headed `title`),
    leaving the others alone."""
    title = SECTION_TITLE if title is None else title
    section = "\n".join([title, "", *body]).rstrip() + "\n"
    text = RESULTS_PATH.read_text() if RESULTS_PATH.exists() else "# Benchmark results\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == title), None)
    if start is None:
        updated = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        # Notes written by hand at the end of the section outlive a rerun.
        notes = next((i for i in range(start + 1, end) if lines[i].rstrip() == NOTES_TITLE), None)
        if notes is not None:
            section += "\n" + "".join(lines[notes:end]).rstrip("\n") + "\n"
        after = "".join(lines[end:])
        updated = "".join(lines[:start]) + section + ("\n" + after if after else "")
    temporary = RESULTS_PATH.with_name(f".{RESULTS_PATH.name}.{os.getpid()}.tmp")
    temporary.write_text(updated)
    temporary.replace(RESULTS_PATH)


def report(
    runs: Runs,
    results: Results,
    seeds: Sequence[int],
    machine: dict[str, str],
    genomes: int,
    contigs: int,
    contig_bp: int,
) -> list[str]:
    """The body of the `## Binning` section."""
    samples_flag = "" if SAMPLES is None else f" --samples {SAMPLES}"
    if COMMUNITY in REAL_COMMUNITIES:
        strains = sum(relation.startswith("strain") for relation in genome_relations().values())
        community = (
            f"`python benchmarks/binning.py --community {COMMUNITY}{samples_flag}` (issue #6, "
            "second bar). Every "
            "tool bins the same contigs and BAMs of a community the project did not generate: "
            f"{genomes} real bacterial and archaeal genomes shipped in {genome_origin()} (genome "
            f"set {REAL_COMMUNITIES[COMMUNITY]} of benchmarks/debian_community.py; {strains} of "
            "them strains of another genome's species), reads simulated by ART (HiSeq 2500 "
            "profile, 2 x 150 bp, log-normal abundances differing in "
            f"{len(list(SOURCE_DIR.glob('*.bam')))} samples), co-assembled by MEGAHIT and "
            "mapped back with minimap2; the truth scores the "
            f"{contigs:,} contigs >= 2 kbp ({contig_bp / 1e6:.1f} Mbp) that minimap2 places on "
            "one genome."
        )
    else:
        community = (
            f"`python benchmarks/binning.py{samples_flag}` (issue #6 item 9). Every tool bins "
            "the same contigs "
            f"and BAMs of one seeded community ({genomes} genomes incl. related models and "
            f"strains, {contigs:,} contigs, {contig_bp / 1e6:.1f} Mbp, "
            f"{len(list(SOURCE_DIR.glob('*.bam')))} samples, 22 M reads)."
        )
    if SAMPLES is not None:
        community += (
            " Here the tools get only "
            + ("the first sample's BAM file" if SAMPLES == 1 else f"the first {SAMPLES} BAMs")
            + f" (`--samples {SAMPLES}`), as in a study with "
            + ("a single sample" if SAMPLES == 1 else f"{SAMPLES} samples")
            + "; the contigs (the co-assembly of all samples) and the truth are the same."
        )
    seed_list = ", ".join(map(str, seeds))
    body = [
        protocol_line(),
        "",
        community + " Training is stochastic, so every tool runs with each of the seeds "
        f"{seed_list} (as its own `--seed`; the community stays the same), for each seed the "
        "tools one after the other in one run; wall time includes each tool's own abundance "
        "computation from the BAMs; peak RSS from `/usr/bin/time -v`. Quality: "
        "`vaebin.evaluate.evaluate_bins`, bp-weighted, each genome scored by its best bin; "
        "NC = near-complete (>90% completeness, >95% purity).",
        "",
        f"Machine: {machine['nproc']} cores (`nproc`), {machine['cpu_model']}, "
        f"{machine['memory']} RAM, {machine['kernel']}; report written {machine['date_utc']} "
        f"(`date -u`), load average then {machine['load_average']}. The machine is shared with "
        "other work, so wall times are indicative; CPU time (user + system) is steadier.",
        "",
        f"Versions: {tool_versions(runs)}.",
        "",
        *command_lines(seeds),
        "",
        "Over all seeds: NC genomes with each seed, means of the quality figures, medians of the "
        "times, the largest peak RSS:",
        "",
        *summary_table(runs, results, seeds),
        "",
        "Each seed:",
        "",
        *seed_table(runs, results),
        "",
    ]
    bars = bar_lines(runs, results)
    if bars:
        body += [
            "Bars (vaebin-rs default must beat every peer on NC genomes, mean over the seeds "
            "(SemiBin2: at least match it), at no more time or memory than VAMB):",
            *bars,
            "",
        ]
    body += genome_differences(runs, results)
    finished = ", ".join(
        f"{TOOL_LABELS[tool]} {finished_at(tool, by_seed)}" for tool, by_seed in runs.items()
    )
    body.append(f"Each tool's last run finished at (UTC): {finished}.")
    body.append(
        "Per-genome tables of each tool and seed: "
        f"`{RUNS_DIR.relative_to(REPOSITORY_DIR)}/seed<N>/<tool>.evaluation.txt`."
    )
    return body


def protocol_line() -> str:
    """Whether the community of this section is a tuning or a held-out set, in bold."""
    if COMMUNITY_ROLES[COMMUNITY] == "held out":
        return (
            f"**Held-out set** ({PROTOCOL_REFERENCE}): no default or threshold of vaebin-rs was "
            "chosen on this community."
        )
    return (
        f"**Tuning set** ({PROTOCOL_REFERENCE}): defaults or thresholds of vaebin-rs were "
        "chosen on this community (benchmarks/dev/NOTES.md), so these figures may flatter it."
    )


def best_peer(results: Results) -> str | None:
    """The peer with the most near-complete genomes on average (VAMB first among equals)."""
    peers = [tool for tool in ("vamb", "semibin", "metabat2", "article") if tool in results]
    if not peers:
        return None
    return max(peers, key=lambda tool: mean_near_complete(results[tool]))


def genome_relations() -> dict[str, str]:
    """genome -> 'independent', 'strain of genomeNN' or 'related_model of genomeNN'."""
    relations = {}
    with (COMMUNITY_DIR / "genomes.tsv").open() as table:
        header = table.readline().rstrip("\n").split("\t")
        for line in table:
            row = dict(zip(header, line.rstrip("\n").split("\t"), strict=False))
            parent = row.get("parent", "-")
            relation = row.get("relation", "")
            relations[row["genome"]] = (
                relation if parent in ("-", "") else f"{relation} of {parent}"
            )
    return relations


@cache
def community_truth() -> tuple[dict[str, str], dict[str, int]]:
    """contig -> genome and contig -> bp of the community, read once."""
    truth_path = COMMUNITY_DIR / "truth.binning"
    return read_cami_binning(truth_path), read_truth_lengths(truth_path)


def describe_recovery(genome: str, score: GenomeScore, bins: dict[str, str]) -> str:
    """Completeness/purity of a genome's best bin, and what kept it from near-complete."""
    truth, lengths = community_truth()
    text = f"{100 * score.completeness:.0f}% / {100 * score.purity:.0f}%"
    notes = []
    if score.best_bin is not None and score.purity <= 0.95:
        others: Counter[str] = Counter()
        for contig, name in bins.items():
            if name == score.best_bin and truth.get(contig, genome) != genome:
                others[truth[contig]] += lengths[contig]
        partner, _ = others.most_common(1)[0]
        notes.append(f"merged with {partner}")
    if score.completeness <= 0.9:
        spread: Counter[str] = Counter()
        for contig, name in bins.items():
            if truth.get(contig) == genome:
                spread[name] += lengths[contig]
        holding = [name for name, bp in spread.items() if bp >= 0.05 * score.genome_bp]
        unbinned = 1 - sum(spread.values()) / max(score.genome_bp, 1)
        if len(holding) > 1:
            notes.append(f"split over {len(holding)} bins")
        if unbinned >= 0.05:
            notes.append(f"{100 * unbinned:.0f}% unbinned")
    return text + (f" ({', '.join(notes)})" if notes else "")


def near_complete(score: GenomeScore) -> bool:
    """The genome's best bin is more than 90% complete and more than 95% pure."""
    return score.completeness > 0.9 and score.purity > 0.95


def genome_differences(runs: Runs, results: Results) -> list[str]:
    """Genomes near-complete with different seeds for vaebin-rs default and the best peer.

    Each side tells in how many of the seeds the genome was near-complete, then the
    completeness and purity of its best bin with each seed where it was not.
    """
    peer = best_peer(results)
    if "vaebin" not in results or peer is None:
        return []
    seeds = [seed for seed in results["vaebin"] if seed in results[peer]]
    scores = {
        tool: {seed: {s.genome: s for s in results[tool][seed].genomes} for seed in seeds}
        for tool in ("vaebin", peer)
    }

    def near_complete_seeds(tool: str, genome: str) -> list[int]:
        return [seed for seed in seeds if near_complete(scores[tool][seed][genome])]

    def recovery(tool: str, genome: str) -> str:
        recovered = near_complete_seeds(tool, genome)
        missed = [
            f"seed {seed}: "
            + describe_recovery(genome, scores[tool][seed][genome], runs[tool][seed].bins)
            for seed in seeds
            if seed not in recovered
        ]
        return "; ".join([f"{len(recovered)}/{len(seeds)}", *missed])

    genomes = sorted(scores["vaebin"][seeds[0]])
    differing = [
        genome
        for genome in genomes
        if near_complete_seeds("vaebin", genome) != near_complete_seeds(peer, genome)
    ]
    if not differing:
        return [
            f"vaebin-rs default and {TOOL_LABELS[peer]} recover the same NC genomes with every "
            "seed.",
            "",
        ]
    relations = genome_relations()
    lines = [
        f"Genomes near-complete with different seeds for vaebin-rs default and the best peer "
        f"({TOOL_LABELS[peer]}): seeds where near-complete out of {len(seeds)}, then for each "
        "other seed the completeness / purity of the best bin:",
        "",
        f"| genome | relation | vaebin-rs default | {TOOL_LABELS[peer]} |",
        "|---|---|---|---|",
    ]
    for genome in differing:
        lines.append(
            f"| {genome} | {relations.get(genome, '?')} | {recovery('vaebin', genome)} "
            f"| {recovery(peer, genome)} |"
        )
    return [*lines, ""]


def finished_at(tool: str, seeds: Iterable[int]) -> str:
    """When the last command of `tool` with the last of `seeds` ended (its time report's date)."""
    modified = max((seed_dir(seed) / TIME_REPORTS[tool][-1]).stat().st_mtime for seed in seeds)
    return datetime.fromtimestamp(modified, timezone.utc).strftime("%H:%M")


def community_size() -> tuple[int, int, int]:
    """Genomes, contigs and contig bp of the truth."""
    truth, lengths = community_truth()
    genomes = len(set(truth.values()))
    return genomes, len(lengths), sum(lengths.values())


def parse_tools(text: str) -> list[str]:
    """Comma-separated tool names, checked, in the benchmark's fixed order."""
    asked = {name.strip() for name in text.split(",") if name.strip()}
    unknown = asked - set(TOOL_ORDER)
    if unknown or not asked:
        raise argparse.ArgumentTypeError(f"choose among {','.join(TOOL_ORDER)} (got {text!r})")
    return [tool for tool in TOOL_ORDER if tool in asked]


def parse_seeds(text: str) -> list[int]:
    """Comma-separated tool seeds, each at least 1 (MetaBAT2 takes 0 for a random seed)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 1:
        raise argparse.ArgumentTypeError(f"give integers >= 1 such as 1,2,3 (got {text!r})")
    return list(dict.fromkeys(seeds))  # each once, in the order given


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, set up, run each tool, score and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setup-vamb", action="store_true", help="create/complete benchmarks/envs/vamb first"
    )
    parser.add_argument(
        "--setup-semibin",
        action="store_true",
        help=f"create/complete benchmarks/envs/semibin (SemiBin2 {SEMIBIN_VERSION}) first",
    )
    parser.add_argument(
        "--skip-simulate",
        action="store_true",
        help="use the cached community as it is (fail if missing) instead of simulating",
    )
    parser.add_argument(
        "--tools",
        type=parse_tools,
        default=list(DEFAULT_TOOLS),
        help=f"comma-separated subset of {','.join(TOOL_ORDER)} [{','.join(DEFAULT_TOOLS)}; "
        "semibin only when named]",
    )
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        default=list(SEEDS),
        help="comma-separated seeds; every tool runs once with each as its own seed (the "
        f"community keeps its own fixed seed) [{','.join(map(str, SEEDS))}]",
    )
    parser.add_argument(
        "--community",
        choices=("simulated", *REAL_COMMUNITIES),
        default="simulated",
        help="the simulated benchmark community, or real genomes from Debian packages "
        "(benchmarks/debian_community.py, genome set 1, 2, 3 or 4 (PyPI sdists); sets 3 and 4 "
        "are held out) "
        "[simulated]",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help="give the tools only the BAM files of the first N samples (same contigs and truth; "
        "own runs folder and RESULTS.md section) [all]",
    )
    parser.add_argument(
        "--no-report", action="store_true", help="print the table only; leave RESULTS.md alone"
    )
    parser.add_argument(
        "--leave-one-out",
        action="store_true",
        help="instead of the tool comparison: vaebin-rs default trained once per seed, then "
        "re-clustered with each clustering step off in turn (RESULTS.md, 'Leave one step out')",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: score and report the last runs of the tools with the seeds asked, "
        "as left in benchmarks/data/binning-runs*/seed<N> (a tool may lack all but the first)",
    )
    options = parser.parse_args(argv)
    select_community(options.community, options.samples)
    if options.leave_one_out and options.report_only:
        write_leave_one_out_section()
        return
    if options.report_only:
        # A costly peer may have run with only some of the seeds (SemiBin2): report those.
        runs: Runs = {
            tool: {
                seed: reload_run(tool, seed)
                for seed in options.seeds
                if (seed_dir(seed) / tool).is_dir() or seed == options.seeds[0]
            }
            for tool in options.tools
        }
        results: Results = {
            tool: {seed: score(run) for seed, run in by_seed.items()}
            for tool, by_seed in runs.items()
        }
        finish(runs, results, options.seeds, options.no_report)
        return

    _time_binary()
    if options.setup_vamb:
        setup_vamb()
    if options.setup_semibin:
        setup_semibin()
    if options.skip_simulate:
        if not community_ready():
            sys.exit(f"binning.py: no complete community in {COMMUNITY_DIR}; drop --skip-simulate")
    else:
        simulate_community()
    link_sample_subset()
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    if options.leave_one_out:
        run_leave_one_out(options.seeds)
        return

    runs = {tool: {} for tool in options.tools}
    results = {tool: {} for tool in options.tools}
    # Seed by seed, so that vaebin-rs and VAMB with one seed meet similar other load.
    for seed in options.seeds:
        for tool in options.tools:
            print(f"{TOOL_LABELS[tool]}, seed {seed}:", flush=True)
            run = RUNNERS[tool](seed)
            result = score(run)
            runs[tool][seed], results[tool][seed] = run, result
            print(
                f"    NC genomes {result.near_complete}, "
                f"ARI {result.adjusted_rand_index:.3f}, bins {result.n_bins}",
                flush=True,
            )
    finish(runs, results, options.seeds, options.no_report)


def finish(runs: Runs, results: Results, seeds: Sequence[int], print_only: bool) -> None:
    """Save the figures as JSON, print the report and (unless `print_only`) write it."""
    machine = machine_description()
    body = report(runs, results, seeds, machine, *community_size())
    record = {
        "machine": machine,
        "seeds": list(seeds),
        "runs": {
            tool: {seed: {**asdict(run), "bins": len(run.bins)} for seed, run in by_seed.items()}
            for tool, by_seed in runs.items()
        },
        "results": {
            tool: {seed: result.to_dict() for seed, result in by_seed.items()}
            for tool, by_seed in results.items()
        },
    }
    (RUNS_DIR / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    print("\n".join(body))
    if not print_only:
        write_section(body)
        print(f"\nwrote the {SECTION_TITLE!r} section of {RESULTS_PATH}")


if __name__ == "__main__":
    main()
