"""Binning benchmark (issue #6 item 9): vaebin-rs against VAMB 5.0.4 and MetaBAT2.

All tools bin the same contigs and BAMs of one seeded benchmark-scale community (32 genomes with
related models and strains, 4 samples, 22 M reads) in the same run, one after the other:

    python benchmarks/binning.py --setup-vamb     # once: benchmarks/envs/vamb with VAMB 5.0.4
    python benchmarks/binning.py [--skip-simulate] [--tools vaebin,article,vamb,metabat2]

`--community debian` runs the same comparison on a community the project did not generate:
real genomes from Debian packages, ART reads, a MEGAHIT co-assembly and minimap2 mappings
(benchmarks/debian_community.py); its figures go into their own section of RESULTS.md.

Each tool's wall time includes its own abundance computation from the BAMs (VAMB through
pycoverm, MetaBAT2 through `jgi_summarize_bam_contig_depths`, vaebin-rs through its Rust core),
and peak RSS comes from `/usr/bin/time -v` (the larger of the two commands of MetaBAT2).
Bins are scored with `vaebin.evaluate.evaluate_bins` against the simulator's CAMI truth. The
figures, the machine and the bars go into the `## Binning` section of benchmarks/RESULTS.md;
every tool's raw output, log and per-genome table stay under benchmarks/data/binning-runs/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from vaebin.evaluate import EvaluationResult, GenomeScore, evaluate_bins
from vaebin.pipeline import read_clusters, read_truth_lengths
from vaebin.simulate import read_cami_binning

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPOSITORY_DIR = BENCHMARKS_DIR.parent
COMMUNITY_DIR = BENCHMARKS_DIR / "data" / "community-benchmark"
RUNS_DIR = BENCHMARKS_DIR / "data" / "binning-runs"
COMMUNITY = "simulated"  # or "debian"; select_community() sets the three paths above
RESULTS_PATH = BENCHMARKS_DIR / "RESULTS.md"
SECTION_TITLE = "## Binning"
NOTES_TITLE = "### Notes"
VAMB_ENV_DIR = BENCHMARKS_DIR / "envs" / "vamb"
VAMB_VERSION = "5.0.4"
# What vaebin-rs is built from, for the commit a run reports.
SOURCE_PATHS = ("python", "rust", "Cargo.toml", "pyproject.toml")

SEED = 1
THREADS = 2
MIN_CONTIG_BP = 2000
METABAT_MIN_CONTIG_BP = 2500  # metabat2's own default (and its floor is 1500)
MIN_BIN_BP = 200_000
# Another helper may be building the shared VAMB environment; how long to wait for it.
VAMB_SETUP_WAIT_SECONDS = 1800

# Also the order they run in: vaebin-rs and VAMB back to back, so they meet similar other load.
TOOL_ORDER = ("vaebin", "vamb", "article", "metabat2")
TOOL_LABELS = {
    "vaebin": "vaebin-rs (default)",
    "article": "vaebin-rs (--preset article)",
    "vamb": f"VAMB {VAMB_VERSION}",
    "metabat2": "MetaBAT2",
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
    """One tool's measured commands and its bins as contig -> bin."""

    tool: str
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


def select_community(name: str) -> None:
    """Point the benchmark at the simulated community or the Debian real-genome community."""
    global COMMUNITY, COMMUNITY_DIR, RUNS_DIR, SECTION_TITLE
    COMMUNITY = name
    if name == "debian":
        COMMUNITY_DIR = BENCHMARKS_DIR / "data" / "community-debian"
        RUNS_DIR = BENCHMARKS_DIR / "data" / "binning-runs-debian"
        SECTION_TITLE = "## Binning on real genomes"


def community_ready() -> bool:
    """The simulator writes samplesheet.csv last, so its presence means a complete community."""
    return (COMMUNITY_DIR / "samplesheet.csv").is_file() and (
        COMMUNITY_DIR / "truth.binning"
    ).is_file()


def simulate_community() -> None:
    """Simulate the seeded benchmark community unless it is already cached."""
    if community_ready():
        print(f"community: cached in {COMMUNITY_DIR}")
        return
    if COMMUNITY == "debian":
        import debian_community  # benchmarks/ is on sys.path when this script runs

        debian_community.build(COMMUNITY_DIR)
        return
    print(f"community: simulating into {COMMUNITY_DIR} (a few minutes)")
    cost = measure(
        [
            str(_vaebin_executable()),
            "simulate",
            "--preset",
            "benchmark",
            "--seed",
            str(SEED),
            "--threads",
            str(THREADS),
            "--outdir",
            str(COMMUNITY_DIR),
        ],
        RUNS_DIR / "simulate.log",
    )
    print(f"community: simulated in {cost.wall_seconds:.0f} s")


def community_bams() -> list[Path]:
    """The per-sample BAM files of the community, in sample order."""
    bams = sorted(COMMUNITY_DIR.glob("*.bam"))
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
# the tools


def _vaebin_executable() -> Path:
    executable = Path(sys.executable).parent / "vaebin-rs"
    if not executable.exists():
        sys.exit(f"binning.py: {executable} is missing; run from the project's .venv")
    return executable


def run_vaebin(tool: str) -> ToolRun:
    """vaebin-rs `bin` end to end from the BAMs, with the default or the article preset."""
    outdir = RUNS_DIR / tool
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
        str(SEED),
    ]
    revision = source_revision()
    run = ToolRun(tool, [measure(argv, RUNS_DIR / f"{tool}.log")], collect_bins(tool))
    (RUNS_DIR / f"{tool}.revision").write_text(revision + "\n")
    return run


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


def run_vamb() -> ToolRun:
    """VAMB's default contig workflow from the BAMs; bins are the clusters it writes as FASTA."""
    if not vamb_works():
        sys.exit("binning.py: VAMB is not set up; run `python benchmarks/binning.py --setup-vamb`")
    outdir = RUNS_DIR / "vamb"
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
        str(SEED),
        "--minfasta",
        str(MIN_BIN_BP),
    ]
    return ToolRun("vamb", [measure(argv, RUNS_DIR / "vamb.log")], collect_bins("vamb"))


def run_metabat2() -> ToolRun:
    """jgi_summarize_bam_contig_depths, then metabat2; bins are its FASTA files."""
    outdir = RUNS_DIR / "metabat2"
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
        RUNS_DIR / "metabat2-depth.log",
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
            str(SEED),
        ],
        RUNS_DIR / "metabat2.log",
    )
    return ToolRun("metabat2", [depth_cost, bin_cost], collect_bins("metabat2"))


# The `/usr/bin/time -v` reports of each tool's commands, in the order they run.
TIME_REPORTS = {
    "vaebin": ("vaebin.time",),
    "article": ("article.time",),
    "vamb": ("vamb.time",),
    "metabat2": ("metabat2-depth.time", "metabat2.time"),
}


def collect_bins(tool: str) -> dict[str, str]:
    """contig -> bin from the output `tool` left in its folder under RUNS_DIR."""
    outdir = RUNS_DIR / tool
    if tool in ("vaebin", "article"):
        return read_clusters(outdir / "clusters.tsv")
    if tool == "vamb":
        clusters = read_clusters(outdir / "vae_clusters_unsplit.tsv")
        # VAMB's table lists every cluster, however small; its FASTA output holds those of at
        # least --minfasta bp, which is the set the other tools report.
        written = {path.name.removesuffix(".fna") for path in (outdir / "bins").glob("*.fna")}
        return {contig: name for contig, name in clusters.items() if name in written}
    return read_fasta_bins(outdir / "bins")


def reload_run(tool: str) -> ToolRun:
    """A tool's last run as it is on disk: its time reports and its bins."""
    costs = [read_time_report(RUNS_DIR / name) for name in TIME_REPORTS[tool]]
    return ToolRun(tool, costs, collect_bins(tool))


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


RUNNERS: dict[str, Callable[[], ToolRun]] = {
    "vaebin": lambda: run_vaebin("vaebin"),
    "article": lambda: run_vaebin("article"),
    "vamb": run_vamb,
    "metabat2": run_metabat2,
}


# ---------------------------------------------------------------------------------------------
# scoring and the report


def score(run: ToolRun) -> EvaluationResult:
    """Bins of `run` against the community's truth, bp-weighted."""
    result = evaluate_bins(*community_truth(), run.bins)
    (RUNS_DIR / f"{run.tool}.evaluation.txt").write_text(result.table() + "\n")
    (RUNS_DIR / f"{run.tool}.evaluation.json").write_text(result.to_json() + "\n")
    return result


def _megabytes(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:,.0f}"


def quality_table(runs: dict[str, ToolRun], results: dict[str, EvaluationResult]) -> list[str]:
    """Markdown rows: one per tool, quality then cost."""
    quality_headers = " | ".join(label for label, _, _ in QUALITY_COLUMNS)
    lines = [
        f"| tool | {quality_headers} | ARI (bp) | bins | binned bp | wall time | CPU time "
        "| peak RSS |",
        "|---" * (len(QUALITY_COLUMNS) + 7) + "|",
    ]
    for tool, run in runs.items():
        result = results[tool]
        counts = " | ".join(str(result.count(c, p)) for _, c, p in QUALITY_COLUMNS)
        if len(run.commands) > 1:
            rss = " + ".join(_megabytes(c.peak_rss_bytes) for c in run.commands)
            rss = f"{_megabytes(run.peak_rss_bytes)} MB (max of {rss})"
            wall = " + ".join(f"{c.wall_seconds:.0f}" for c in run.commands)
            wall = f"{run.wall_seconds:.0f} s ({wall})"
        else:
            rss = f"{_megabytes(run.peak_rss_bytes)} MB"
            wall = f"{run.wall_seconds:.0f} s"
        binned = f"{100 * result.binned_bp / max(result.total_bp, 1):.1f}%"
        lines.append(
            f"| {TOOL_LABELS[tool]} | {counts} | {result.adjusted_rand_index:.3f} | "
            f"{result.n_bins} | {binned} | {wall} | {run.cpu_seconds:.0f} s | {rss} |"
        )
    return lines


def bar_lines(runs: dict[str, ToolRun], results: dict[str, EvaluationResult]) -> list[str]:
    """The bars of the issue, each with its figures and PASS/FAIL (when its tools ran)."""
    lines: list[str] = []
    if "vaebin" not in runs:
        return lines
    ours = results["vaebin"].near_complete
    for peer in ("vamb", "metabat2", "article"):
        if peer in results:
            theirs = results[peer].near_complete
            verdict = "PASS" if ours > theirs else "FAIL"
            lines.append(
                f"- near-complete genomes, vaebin-rs default ({ours}) > {TOOL_LABELS[peer]} "
                f"({theirs}): **{verdict}**"
            )
    if "vamb" in runs:
        time_ratio = runs["vaebin"].wall_seconds / runs["vamb"].wall_seconds
        rss_ratio = runs["vaebin"].peak_rss_bytes / runs["vamb"].peak_rss_bytes
        lines.append(
            f"- wall time, vaebin-rs / VAMB = {runs['vaebin'].wall_seconds:.0f} s / "
            f"{runs['vamb'].wall_seconds:.0f} s = {time_ratio:.2f} (bar <= 1): "
            f"**{'PASS' if time_ratio <= 1 else 'FAIL'}**"
        )
        lines.append(
            f"- peak RSS, vaebin-rs / VAMB = {_megabytes(runs['vaebin'].peak_rss_bytes)} MB / "
            f"{_megabytes(runs['vamb'].peak_rss_bytes)} MB = {rss_ratio:.2f} (bar <= 1): "
            f"**{'PASS' if rss_ratio <= 1 else 'FAIL'}**"
        )
        cpu_ratio = runs["vaebin"].cpu_seconds / runs["vamb"].cpu_seconds
        lines.append(
            f"- (not a bar) CPU time, vaebin-rs / VAMB = {runs['vaebin'].cpu_seconds:.0f} s / "
            f"{runs['vamb'].cpu_seconds:.0f} s = {cpu_ratio:.2f}"
        )
    verdicts = [line for line in lines if line.endswith("**")]
    passed = sum(line.endswith("**PASS**") for line in verdicts)
    lines.append(f"- {passed} of {len(verdicts)} bars pass.")
    return lines


def command_lines() -> list[str]:
    """How each tool was invoked, with paths shortened to the community folder."""
    community = "$COMMUNITY"
    if COMMUNITY == "debian":
        made = (
            "- community: `python benchmarks/debian_community.py --outdir $COMMUNITY` (real "
            "genomes from Debian packages, ART reads, MEGAHIT co-assembly, minimap2 `-ax sr` "
            "BAMs, truth from minimap2 `-x asm10`; cached between runs)"
        )
    else:
        made = (
            f"- community: `vaebin-rs simulate --preset benchmark --seed {SEED} "
            f"--outdir {community}` (cached between runs)"
        )
    return [
        made,
        f"- vaebin-rs: `vaebin-rs bin --contigs {community}/contigs.fna.gz --bamdir {community} "
        f"--outdir OUT [--preset article] --min-contig-len {MIN_CONTIG_BP} "
        f"--min-bin-size {MIN_BIN_BP} --threads {THREADS} --seed {SEED}` (coverage from the BAMs "
        "in its Rust core; bins as FASTA)",
        f"- VAMB: `vamb bin default --outdir OUT --fasta {community}/contigs.fna.gz "
        f"--bamdir {community} -m {MIN_CONTIG_BP} -p {THREADS} --seed {SEED} "
        f"--minfasta {MIN_BIN_BP}` (abundance from the BAMs through pycoverm; scored on the "
        "clusters it writes as FASTA)",
        f"- MetaBAT2: `jgi_summarize_bam_contig_depths --outputDepth depth.txt {community}/*.bam` "
        f"then `metabat2 -i {community}/contigs.fna.gz -a depth.txt -o OUT/bin "
        f"-m {METABAT_MIN_CONTIG_BP} -s {MIN_BIN_BP} -t {THREADS} --seed {SEED}`",
    ]


def tool_versions(tools: Sequence[str]) -> str:
    """Versions of the tools that ran, for the report."""
    parts = []
    if "vaebin" in tools or "article" in tools:
        completed = subprocess.run(
            [str(_vaebin_executable()), "--version"], capture_output=True, text=True
        )
        revisions = {
            tool: (RUNS_DIR / f"{tool}.revision").read_text().strip()
            for tool in ("vaebin", "article")
            if tool in tools and (RUNS_DIR / f"{tool}.revision").is_file()
        }
        revision = ", ".join(sorted(set(revisions.values()))) or "unknown"
        parts.append(f"{completed.stdout.strip()} at commit {revision}")
        parts.append(f"torch {_installed_version('torch')}")
    if "vamb" in tools:
        versions = _environment_versions(_vamb_python(), ("vamb", "torch", "numpy", "pycoverm"))
        parts.append(f"VAMB env: {versions}")
    if "metabat2" in tools:
        completed = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "metabat"], capture_output=True, text=True
        )
        parts.append(f"MetaBAT2 (Debian metabat {completed.stdout.strip() or 'unknown'})")
    return "; ".join(parts)


def write_section(body: list[str]) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving the others alone."""
    section = "\n".join([SECTION_TITLE, "", *body]).rstrip() + "\n"
    text = RESULTS_PATH.read_text() if RESULTS_PATH.exists() else "# Benchmark results\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION_TITLE), None)
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
    runs: dict[str, ToolRun],
    results: dict[str, EvaluationResult],
    machine: dict[str, str],
    genomes: int,
    contigs: int,
    contig_bp: int,
) -> list[str]:
    """The body of the `## Binning` section."""
    if COMMUNITY == "debian":
        community = (
            "`python benchmarks/binning.py --community debian` (issue #6, second bar). Every "
            "tool bins the same contigs and BAMs of a community the project did not generate: "
            f"{genomes} real bacterial and archaeal genomes shipped in Debian packages (five of "
            "them strains of another genome's species), reads simulated by ART (HiSeq 2500 "
            "profile, 2 x 150 bp, log-normal abundances differing in 4 samples), co-assembled "
            "by MEGAHIT and mapped back with minimap2; the truth scores the "
            f"{contigs:,} contigs >= 2 kbp ({contig_bp / 1e6:.1f} Mbp) that minimap2 places on "
            "one genome. Tools run one after the other in one run"
        )
    else:
        community = (
            "`python benchmarks/binning.py` (issue #6 item 9). Every tool bins the same contigs "
            f"and BAMs of one seeded community ({genomes} genomes incl. related models and "
            f"strains, {contigs:,} contigs, {contig_bp / 1e6:.1f} Mbp, 4 samples, 22 M reads), "
            "one after the other in one run"
        )
    body = [
        community + "; wall time includes each tool's own abundance computation from the "
        "BAMs; peak RSS from `/usr/bin/time -v`. Quality: `vaebin.evaluate.evaluate_bins`, "
        "bp-weighted, each genome scored by its best bin; NC = near-complete "
        "(>90% completeness, >95% purity).",
        "",
        f"Machine: {machine['nproc']} cores (`nproc`), {machine['cpu_model']}, "
        f"{machine['memory']} RAM, {machine['kernel']}; report written {machine['date_utc']} "
        f"(`date -u`), load average then {machine['load_average']}. The machine is shared with "
        "other work, so wall times are indicative; CPU time (user + system) is steadier.",
        "",
        f"Versions: {tool_versions(list(runs))}.",
        "",
        "Commands:",
        *command_lines(),
        "",
        *quality_table(runs, results),
        "",
    ]
    bars = bar_lines(runs, results)
    if bars:
        body += [
            "Bars (vaebin-rs default must beat every peer on NC genomes, at no more time or "
            "memory than VAMB):",
            *bars,
            "",
        ]
    body += genome_differences(runs, results)
    finished = ", ".join(f"{TOOL_LABELS[tool]} {finished_at(tool)}" for tool in runs)
    body.append(f"Each tool's run finished at (UTC): {finished}.")
    body.append(
        "Per-genome tables of each tool: "
        f"`{RUNS_DIR.relative_to(REPOSITORY_DIR)}/<tool>.evaluation.txt`."
    )
    return body


def best_peer(results: dict[str, EvaluationResult]) -> str | None:
    """The peer with the most near-complete genomes (VAMB first among equals)."""
    peers = [tool for tool in ("vamb", "metabat2", "article") if tool in results]
    if not peers:
        return None
    return max(peers, key=lambda tool: results[tool].near_complete)


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


def genome_differences(runs: dict[str, ToolRun], results: dict[str, EvaluationResult]) -> list[str]:
    """Genomes near-complete for vaebin-rs default or the best peer but not for both."""
    peer = best_peer(results)
    if "vaebin" not in results or peer is None:
        return []
    ours = {score.genome: score for score in results["vaebin"].genomes}
    theirs = {score.genome: score for score in results[peer].genomes}

    def near_complete(score: GenomeScore) -> bool:
        return score.completeness > 0.9 and score.purity > 0.95

    differing = [g for g in sorted(ours) if near_complete(ours[g]) != near_complete(theirs[g])]
    if not differing:
        return [f"vaebin-rs default and {TOOL_LABELS[peer]} recover the same NC genomes.", ""]
    relations = genome_relations()
    lines = [
        f"Genomes near-complete for only one of vaebin-rs default and the best peer "
        f"({TOOL_LABELS[peer]}), completeness / purity of the best bin:",
        "",
        f"| genome | relation | vaebin-rs default | {TOOL_LABELS[peer]} |",
        "|---|---|---|---|",
    ]
    for genome in differing:
        lines.append(
            f"| {genome} | {relations.get(genome, '?')} "
            f"| {describe_recovery(genome, ours[genome], runs['vaebin'].bins)} "
            f"| {describe_recovery(genome, theirs[genome], runs[peer].bins)} |"
        )
    return [*lines, ""]


def finished_at(tool: str) -> str:
    """When the last command of `tool` ended (its last time report was written then)."""
    modified = (RUNS_DIR / TIME_REPORTS[tool][-1]).stat().st_mtime
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


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, set up, run each tool, score and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setup-vamb", action="store_true", help="create/complete benchmarks/envs/vamb first"
    )
    parser.add_argument(
        "--skip-simulate",
        action="store_true",
        help="use the cached community as it is (fail if missing) instead of simulating",
    )
    parser.add_argument(
        "--tools",
        type=parse_tools,
        default=list(TOOL_ORDER),
        help=f"comma-separated subset of {','.join(TOOL_ORDER)} [all]",
    )
    parser.add_argument(
        "--community",
        choices=("simulated", "debian"),
        default="simulated",
        help="the simulated benchmark community, or real genomes from Debian packages "
        "(benchmarks/debian_community.py) [simulated]",
    )
    parser.add_argument(
        "--no-report", action="store_true", help="print the table only; leave RESULTS.md alone"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: score and report the last runs left in benchmarks/data/binning-runs",
    )
    options = parser.parse_args(argv)
    select_community(options.community)
    if options.report_only:
        runs = {tool: reload_run(tool) for tool in options.tools}
        finish(runs, {tool: score(run) for tool, run in runs.items()}, options.no_report)
        return

    _time_binary()
    if options.setup_vamb:
        setup_vamb()
    if options.skip_simulate:
        if not community_ready():
            sys.exit(f"binning.py: no complete community in {COMMUNITY_DIR}; drop --skip-simulate")
    else:
        simulate_community()
    RUNS_DIR.mkdir(parents=True, exist_ok=True)

    runs: dict[str, ToolRun] = {}
    results: dict[str, EvaluationResult] = {}
    for tool in options.tools:
        print(f"{TOOL_LABELS[tool]}:", flush=True)
        runs[tool] = RUNNERS[tool]()
        results[tool] = score(runs[tool])
        print(
            f"    NC genomes {results[tool].near_complete}, "
            f"ARI {results[tool].adjusted_rand_index:.3f}, bins {results[tool].n_bins}",
            flush=True,
        )
    finish(runs, results, options.no_report)


def finish(
    runs: dict[str, ToolRun], results: dict[str, EvaluationResult], print_only: bool
) -> None:
    """Save the figures as JSON, print the report and (unless `print_only`) write it."""
    machine = machine_description()
    body = report(runs, results, machine, *community_size())
    record = {
        "machine": machine,
        "runs": {tool: {**asdict(run), "bins": len(run.bins)} for tool, run in runs.items()},
        "results": {tool: result.to_dict() for tool, result in results.items()},
    }
    (RUNS_DIR / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    print("\n".join(body))
    if not print_only:
        write_section(body)
        print(f"\nwrote the {SECTION_TITLE!r} section of {RESULTS_PATH}")


if __name__ == "__main__":
    main()
