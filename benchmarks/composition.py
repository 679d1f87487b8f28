"""Composition benchmark (issue #4 item 8): vaebin-rs against numpy, VAMB's parser and `gzip -dc`.

Every measured run is a fresh child process, so peak RSS belongs to one tool and one input. The
repetitions are interleaved (each round runs every case once) so that load from other work on the
machine spreads over all cases alike.

    python benchmarks/composition.py --setup-vamb     # once: benchmarks/envs/vamb, VAMB 5.0.4
    python benchmarks/composition.py --write-results  # measure, print, update RESULTS.md

The child side of the script (`--worker ...`) also runs inside the VAMB environment, so the
module imports nothing at top level beyond the standard library, numpy and `_measure`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _measure import MB, ChildRun, current_rss_bytes, machine_description, run_child

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent
DATA_DIR = BENCHMARKS_DIR / "data" / "composition"
VAMB_ENV_DIR = BENCHMARKS_DIR / "envs" / "vamb"
RESULTS_PATH = BENCHMARKS_DIR / "RESULTS.md"
SECTION_TITLE = "## Composition"
NOTES_TITLE = "### Notes"
"""Start of the hand-written tail of the section, which `--write-results` keeps."""
VAMB_VERSION = "5.0.4"

LINE_WIDTH = 80
SHORTEST_CONTIG_BP = 1_000
LONGEST_CONTIG_BP = 500_000
# Log-normal contig lengths (median 4 kbp before the 1 kbp cut, a long tail): roughly the shape
# of a short-read metagenome assembly.
LENGTH_LOG_MEDIAN = np.log(4_000)
LENGTH_LOG_SIGMA = 1.3
GENOMES = 60
GAP_FRACTION = 0.05
"""Fraction of contigs that carry one run of N (a scaffold gap)."""
CHUNK_BASES = 16_000_000
"""Bases handled per vectorised step, by the data generator and the numpy counter alike."""

BAR_MB_PER_SECOND = 600.0
BAR_VAMB_RATIO = 10.0
BAR_RSS_OVERHEAD_BYTES = 150 * MB


# --------------------------------------------------------------------------------------------
# Test data


def _draw_contig_lengths(rng: np.random.Generator, target_bp: int) -> np.ndarray:
    """Log-normal lengths within [1 kbp, 500 kbp] whose sum first reaches `target_bp`."""
    drawn: list[np.ndarray] = []
    total = 0
    while total < target_bp:
        batch = rng.lognormal(LENGTH_LOG_MEDIAN, LENGTH_LOG_SIGMA, size=50_000).astype(np.int64)
        batch = batch[(batch >= SHORTEST_CONTIG_BP) & (batch <= LONGEST_CONTIG_BP)]
        drawn.append(batch)
        total += int(batch.sum())
    lengths = np.concatenate(drawn)
    return lengths[: int(np.searchsorted(np.cumsum(lengths), target_bp)) + 1]


def _exclusive_cumsum(values: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(values)[:-1])).astype(np.int64)


def _fasta_chunk(
    rng: np.random.Generator, first_index: int, lengths: np.ndarray, gc_fractions: np.ndarray
) -> np.ndarray:
    """FASTA bytes of consecutive contigs: random bases at each contig's GC, 80-column lines."""
    total_bp = int(lengths.sum())
    strong = rng.random(total_bp) < np.repeat(gc_fractions, lengths)
    coin = rng.integers(0, 2, size=total_bp, dtype=np.uint8)
    bases = np.where(
        strong, np.frombuffer(b"CG", np.uint8)[coin], np.frombuffer(b"AT", np.uint8)[coin]
    )
    del strong, coin

    sequence_starts = _exclusive_cumsum(lengths)
    gapped = np.flatnonzero(rng.random(len(lengths)) < GAP_FRACTION)
    gap_lengths = rng.integers(10, 500, size=len(gapped))
    gap_starts = sequence_starts[gapped] + rng.integers(0, lengths[gapped] - gap_lengths)
    gap_depth = np.zeros(total_bp + 1, dtype=np.int8)
    gap_depth[gap_starts] += 1
    gap_depth[gap_starts + gap_lengths] -= 1
    bases[np.cumsum(gap_depth[:-1], dtype=np.int8) > 0] = ord("N")

    headers = [
        f">contig_{first_index + offset:07d} length={length}\n"
        for offset, length in enumerate(lengths.tolist())
    ]
    header_bytes = np.frombuffer("".join(headers).encode(), dtype=np.uint8)
    header_lengths = np.fromiter(map(len, headers), dtype=np.int64, count=len(headers))

    line_counts = -(-lengths // LINE_WIDTH)
    record_starts = _exclusive_cumsum(header_lengths + lengths + line_counts)
    # Start with all newlines; headers and bases then overwrite everything but the line ends.
    text = np.full(
        int(record_starts[-1] + header_lengths[-1] + lengths[-1] + line_counts[-1]),
        ord("\n"),
        dtype=np.uint8,
    )
    header_offsets = np.arange(len(header_bytes)) - np.repeat(
        _exclusive_cumsum(header_lengths), header_lengths
    )
    text[np.repeat(record_starts, header_lengths) + header_offsets] = header_bytes
    base_offsets = np.arange(total_bp) - np.repeat(sequence_starts, lengths)
    text[
        np.repeat(record_starts + header_lengths, lengths)
        + base_offsets
        + base_offsets // LINE_WIDTH
    ] = bases
    return text


def generate_contigs(plain_path: Path, target_bp: int, seed: int) -> None:
    """Write a FASTA of simulated contigs totalling about `target_bp`, then its gzip copy."""
    rng = np.random.default_rng(seed)
    lengths = _draw_contig_lengths(rng, target_bp)
    genome_gc = rng.uniform(0.3, 0.7, size=GENOMES)
    contig_gc = genome_gc[rng.integers(0, GENOMES, size=len(lengths))]
    chunk_ends = np.searchsorted(
        np.cumsum(lengths), np.arange(CHUNK_BASES, lengths.sum(), CHUNK_BASES)
    )
    bounds = np.unique(np.concatenate(([0], chunk_ends + 1, [len(lengths)])))
    plain_path.parent.mkdir(parents=True, exist_ok=True)
    partial = plain_path.with_name(plain_path.name + ".partial")
    with open(partial, "wb") as out:
        for first, end in itertools.pairwise(bounds.tolist()):
            out.write(_fasta_chunk(rng, first, lengths[first:end], contig_gc[first:end]).data)
    os.replace(partial, plain_path)
    gz_path = _gz_path(plain_path)
    partial = gz_path.with_name(gz_path.name + ".partial")
    with open(partial, "wb") as out:
        subprocess.run(["gzip", "-6", "-c", str(plain_path)], stdout=out, check=True)
    os.replace(partial, gz_path)


def _gz_path(plain_path: Path) -> Path:
    return plain_path.with_name(plain_path.name + ".gz")


# --------------------------------------------------------------------------------------------
# Independent numpy implementation of canonical tetramer counting

_BASE_CODE = np.full(256, 4, dtype=np.uint8)
"""A/C/G/T (either case) to 0..3; every other byte to 4, which invalidates the k-mers over it."""
for _code, _base in enumerate(b"ACGT"):
    _BASE_CODE[_base] = _BASE_CODE[_base + 32] = _code


def canonical_tetramers() -> tuple[np.ndarray, np.ndarray]:
    """Codes of the 136 canonical tetramers, ascending (= lexicographic), and of their revcomps."""
    codes = np.arange(256)
    complement = codes ^ 0xFF  # A<->T is 0<->3 and C<->G is 1<->2: xor with 3 per base
    reverse_complement = sum(((complement >> (2 * i)) & 3) << (2 * (3 - i)) for i in range(4))
    canonical = np.unique(np.minimum(codes, reverse_complement))
    return canonical, reverse_complement[canonical]


def tetramer_label(code: int) -> str:
    return "".join("ACGT"[(code >> shift) & 3] for shift in (6, 4, 2, 0))


def _count_records(codes: np.ndarray, record_sizes: np.ndarray) -> np.ndarray:
    """Canonical counts (records x 136) of consecutive records, each led by an invalid separator."""
    records = len(record_sizes)
    kmer_positions = max(len(codes) - 3, 0)
    invalid = codes > 3
    bases = codes & 3
    window = [slice(i, i + kmer_positions) for i in range(4)]
    kmers = (
        (bases[window[0]] << 6)
        | (bases[window[1]] << 4)
        | (bases[window[2]] << 2)
        | bases[window[3]]
    )
    valid = ~(invalid[window[0]] | invalid[window[1]] | invalid[window[2]] | invalid[window[3]])
    record_of_position = np.repeat(np.arange(records), record_sizes)[:kmer_positions]
    flat = record_of_position[valid] * 256 + kmers[valid]
    all_kmers = np.bincount(flat, minlength=records * 256).reshape(records, 256)
    canonical, reverse_complement = canonical_tetramers()
    folded = all_kmers[:, canonical]
    not_palindrome = canonical != reverse_complement
    folded[:, not_palindrome] += all_kmers[:, reverse_complement[not_palindrome]]
    return folded


def count_tetramers_numpy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Canonical tetramer counts (uint32, records x 136) and lengths of all records of a FASTA."""
    data = np.fromfile(path, dtype=np.uint8)
    greater_than = np.flatnonzero(data == ord(">"))
    header_starts = greater_than[(greater_than == 0) | (data[greater_than - 1] == ord("\n"))]
    newlines = np.flatnonzero(data == ord("\n"))
    header_ends = newlines[np.searchsorted(newlines, header_starts)]
    # Drop each header's text but keep its '>': an invalid base between records, so that no
    # k-mer can span two of them and record boundaries are the '>' positions in the stream.
    header_depth = np.zeros(len(data) + 1, dtype=np.int8)
    header_depth[header_starts + 1] += 1
    header_depth[header_ends] -= 1
    keep = np.cumsum(header_depth[:-1], dtype=np.int8) == 0
    del header_depth
    keep &= data != ord("\n")
    keep &= data != ord("\r")
    stream = data[keep]
    del data, keep
    record_starts = np.flatnonzero(stream == ord(">"))
    record_sizes = np.diff(np.append(record_starts, len(stream)))  # separator included
    codes = _BASE_CODE[stream]
    del stream
    # Whole records per step, about CHUNK_BASES each, bound the int64 temporaries.
    step_starts = np.unique(np.searchsorted(record_starts, np.arange(0, len(codes), CHUNK_BASES)))
    step_bounds = np.append(step_starts, len(record_starts)).tolist()
    counts = np.empty((len(record_starts), 136), dtype=np.uint32)
    for first, end in itertools.pairwise(step_bounds):
        stop = record_starts[end] if end < len(record_starts) else len(codes)
        counts[first:end] = _count_records(
            codes[record_starts[first] : stop], record_sizes[first:end]
        )
    return counts, record_sizes - 1


# --------------------------------------------------------------------------------------------
# Child processes


def _frequencies(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=1, keepdims=True)
    return (counts / np.maximum(totals, 1)).astype(np.float32)


def _wait_until_idle(step_seconds: float = 0.02, limit_seconds: float = 2.0) -> None:
    """Waits until no thread of this process uses CPU, at most `limit_seconds`.

    numpy's OpenBLAS starts worker threads at import that spin for about 0.1 s: timed right after
    the imports, a call would share the CPU with that spin (on 2 cores, about 20 ms of it overlapped
    the parse) and have it counted in its CPU time. Every tool waits alike.
    """
    deadline = time.perf_counter() + limit_seconds
    while time.perf_counter() < deadline:
        before = time.process_time()
        time.sleep(step_seconds)
        if time.process_time() - before < 0.1 * step_seconds:
            return


def _worker(tool: str, path: Path, threads: int | None, min_length: int) -> dict[str, float]:
    """Parse `path` with one tool in this process; report the call's wall and CPU time, sizes."""
    # Each parse returns its output arrays, the matrix first.
    parse: Callable[[], list[np.ndarray]]
    if tool == "vaebin":
        from vaebin import features

        def parse() -> list[np.ndarray]:
            result = features.composition(path, k=4, min_length=min_length, threads=threads)
            return [result.matrix, result.names, result.lengths, result.kmer_totals]

    elif tool == "numpy":

        def parse() -> list[np.ndarray]:
            counts, lengths = count_tetramers_numpy(path)
            kept = lengths >= min_length
            return [_frequencies(counts[kept]), lengths[kept]]

    elif tool == "vamb":
        import vamb
        from vamb.vambtools import Reader

        def parse() -> list[np.ndarray]:
            with Reader(path) as handle:
                composition = vamb.parsecontigs.Composition.from_file(
                    handle, str(path), minlength=min_length
                )
            # Its contig names are a Python list turned object array: not counted here.
            return [composition.matrix, composition.metadata.lengths, composition.metadata.mask]

    else:
        raise ValueError(f"unknown worker tool {tool!r}")
    rss_after_imports = current_rss_bytes()
    _wait_until_idle()
    start_wall, start_cpu = time.perf_counter(), time.process_time()  # CPU: all threads
    arrays = parse()
    call_seconds = time.perf_counter() - start_wall
    call_cpu_seconds = time.process_time() - start_cpu
    return {
        "call_seconds": call_seconds,
        "call_cpu_seconds": call_cpu_seconds,
        "rows": len(arrays[0]),
        "output_bytes": sum(array.nbytes for array in arrays),
        "rss_after_imports_bytes": rss_after_imports,
    }


def _require(condition: bool, message: str) -> None:
    # Not `assert`: the checks must hold under `python -O` too.
    if not condition:
        raise AssertionError(message)


def _check_outputs(plain_path: Path, min_length: int) -> dict[str, int]:
    """Untimed: vaebin-rs counts must equal the numpy counts exactly, for plain and gzip input."""
    from vaebin import features

    canonical, _ = canonical_tetramers()
    _require(
        features.kmer_labels(4) == [tetramer_label(code) for code in canonical.tolist()],
        "vaebin-rs column order differs from the lexicographic canonical tetramers",
    )
    counts, lengths = count_tetramers_numpy(plain_path)
    kept = lengths >= min_length
    counts, kept_lengths = counts[kept], lengths[kept]
    for path in (plain_path, _gz_path(plain_path)):
        result = features.composition(path, k=4, min_length=min_length, threads=2, normalize=False)
        _require(result.records == len(lengths), f"{path.name}: record count differs from numpy")
        _require(int(result.bases) == int(lengths.sum()), f"{path.name}: base count differs")
        _require(np.array_equal(result.lengths, kept_lengths), f"{path.name}: lengths differ")
        _require(result.matrix.shape == counts.shape, f"{path.name}: matrix shape differs")
        differing = int((result.matrix != counts).sum())
        _require(differing == 0, f"{path.name}: {differing} counts differ from numpy's")
    frequencies = features.composition(plain_path, k=4, min_length=min_length, threads=2).matrix
    _require(
        np.allclose(frequencies, _frequencies(counts), rtol=1e-6, atol=1e-9),
        "vaebin-rs frequencies are not the counts divided by their row sums",
    )
    descending = np.sort(lengths)[::-1]
    n50 = descending[np.searchsorted(np.cumsum(descending), descending.sum() / 2)]
    return {
        "records": len(lengths),
        "rows": len(counts),
        "bases": int(lengths.sum()),
        "median_length": int(np.median(lengths)),
        "n50": int(n50),
    }


# --------------------------------------------------------------------------------------------
# VAMB environment


def _vamb_python() -> Path:
    return VAMB_ENV_DIR / "bin" / "python"


def _vamb_ready() -> bool:
    probe = (
        "import importlib.metadata, vamb.parsecontigs; "
        f"assert importlib.metadata.version('vamb') == {VAMB_VERSION!r}"
    )
    python = _vamb_python()
    return (
        python.exists()
        and subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0
    )


def setup_vamb() -> Path:
    """Create benchmarks/envs/vamb with VAMB's pinned dependencies and one torch; idempotent."""
    python = _vamb_python()
    if _vamb_ready():
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VAMB_ENV_DIR)], check=True)
    pip = [str(python), "-m", "pip", "install"]
    # VAMB's parser never touches torch, but `import vamb` does, so any one torch serves: keep
    # one already there, else take the main environment's version (the wheel pip already has).
    has_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    if has_torch.returncode != 0:
        subprocess.run([*pip, f"torch=={importlib.metadata.version('torch')}"], check=True)
    subprocess.run([*pip, "--no-deps", f"vamb=={VAMB_VERSION}"], check=True)
    read_requirements = (
        "import importlib.metadata, json; print(json.dumps(importlib.metadata.requires('vamb')))"
    )
    listed = subprocess.run(
        [str(python), "-c", read_requirements], capture_output=True, text=True, check=True
    )
    pinned = []
    for requirement in json.loads(listed.stdout) or []:
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        if "extra ==" in requirement or name is None or name.group().lower() == "torch":
            continue
        pinned.append(requirement.split(";")[0].strip())
    subprocess.run([*pip, *pinned], check=True)
    _require(_vamb_ready(), f"VAMB {VAMB_VERSION} does not import in {VAMB_ENV_DIR}")
    return python


# --------------------------------------------------------------------------------------------
# Measurement and report


@dataclass(frozen=True)
class Case:
    """One tool on one input, measured `repeats` times."""

    tool: str
    input_kind: str
    threads: int | None
    argv: list[str]

    @property
    def key(self) -> str:
        return f"{self.tool}/{self.input_kind}/{self.threads}"


@dataclass(frozen=True)
class Summary:
    """Medians over the repetitions of one case."""

    case: Case
    call_seconds: float
    call_cpu_seconds: float
    process_seconds: float
    peak_rss_bytes: float
    rss_after_imports_bytes: float | None
    output_bytes: int | None
    rows: int | None


TOOL_NAMES = {
    "vaebin": "vaebin-rs (Python API)",
    "numpy": "numpy, vectorised (this script)",
    "vamb": f"VAMB {VAMB_VERSION} `Composition.from_file`",
    "gzip": "`gzip -dc > /dev/null`",
}


def _cases(plain_path: Path, min_length: int) -> list[Case]:
    gz_path = _gz_path(plain_path)
    script = str(Path(__file__).resolve())

    def worker(python: Path | str, tool: str, path: Path, threads: int | None) -> list[str]:
        argv = [str(python), script, "--worker", tool, "--input", str(path)]
        argv += ["--min-length", str(min_length)]
        return argv + (["--threads", str(threads)] if threads is not None else [])

    return [
        Case("gzip", "gz", 1, ["gzip", "-dc", str(gz_path)]),
        Case("vaebin", "plain", 1, worker(sys.executable, "vaebin", plain_path, 1)),
        Case("vaebin", "plain", 2, worker(sys.executable, "vaebin", plain_path, 2)),
        Case("vaebin", "gz", 1, worker(sys.executable, "vaebin", gz_path, 1)),
        Case("vaebin", "gz", 2, worker(sys.executable, "vaebin", gz_path, 2)),
        Case("numpy", "plain", 1, worker(sys.executable, "numpy", plain_path, None)),
        Case("vamb", "plain", 1, worker(_vamb_python(), "vamb", plain_path, None)),
        Case("vamb", "gz", 1, worker(_vamb_python(), "vamb", gz_path, None)),
    ]


def _summarize(case: Case, runs: list[ChildRun]) -> Summary:
    process_seconds = statistics.median(run.wall_seconds for run in runs)
    if case.tool == "gzip":
        # No in-process timer: the whole process is the call (its start-up takes a millisecond).
        return Summary(
            case=case,
            call_seconds=process_seconds,
            call_cpu_seconds=statistics.median(run.cpu_seconds for run in runs),
            process_seconds=process_seconds,
            peak_rss_bytes=statistics.median(run.peak_rss_bytes for run in runs),
            rss_after_imports_bytes=None,
            output_bytes=None,
            rows=None,
        )
    reports = [json.loads(run.stdout) for run in runs]
    return Summary(
        case=case,
        call_seconds=statistics.median(report["call_seconds"] for report in reports),
        call_cpu_seconds=statistics.median(report["call_cpu_seconds"] for report in reports),
        process_seconds=process_seconds,
        peak_rss_bytes=statistics.median(run.peak_rss_bytes for run in runs),
        rss_after_imports_bytes=statistics.median(
            report["rss_after_imports_bytes"] for report in reports
        ),
        output_bytes=reports[0]["output_bytes"],
        rows=reports[0]["rows"],
    )


def measure(plain_path: Path, min_length: int, repeats: int) -> list[Summary]:
    """Run every case `repeats` times, round by round, and return their medians."""
    cases = _cases(plain_path, min_length)
    runs: dict[str, list[ChildRun]] = {case.key: [] for case in cases}
    for round_number in range(repeats):
        for case in cases:
            run = run_child(case.argv, capture_stdout=case.tool != "gzip")
            runs[case.key].append(run)
            print(
                f"round {round_number + 1}: {case.key:<16} {run.wall_seconds:7.2f} s "
                f"{run.peak_rss_bytes / MB:7.0f} MB",
                file=sys.stderr,
            )
    return [_summarize(case, runs[case.key]) for case in cases]


def _by_key(summaries: list[Summary]) -> dict[str, Summary]:
    return {summary.case.key: summary for summary in summaries}


def _megabytes(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value / MB:.{digits}f}"


def _table(summaries: list[Summary], bases: int) -> list[str]:
    lines = [
        "| Tool | Input | Threads | Call s | Seq MB/s | Call CPU s | Seq MB/CPU-s | Process s "
        "| Peak RSS MB | RSS after imports MB | Output arrays MB | RSS bar MB | Rows |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for summary in summaries:
        case = summary.case
        output = summary.output_bytes
        rss_bar = None if output is None else 2 * output + BAR_RSS_OVERHEAD_BYTES
        cells = [
            TOOL_NAMES[case.tool],
            case.input_kind,
            str(case.threads or 1),
            f"{summary.call_seconds:.2f}",
            f"{bases / summary.call_seconds / MB:.0f}",
            f"{summary.call_cpu_seconds:.2f}",
            f"{bases / summary.call_cpu_seconds / MB:.0f}",
            f"{summary.process_seconds:.2f}",
            _megabytes(summary.peak_rss_bytes),
            _megabytes(summary.rss_after_imports_bytes),
            _megabytes(output, 1),
            _megabytes(rss_bar),
            "-" if summary.rows is None else str(summary.rows),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _verdicts(summaries: list[Summary], bases: int) -> list[tuple[str, bool]]:
    """Each bar of the issue as one sentence with the measured figures, and whether it holds."""
    by_key = _by_key(summaries)
    plain_2, gz_2 = by_key["vaebin/plain/2"], by_key["vaebin/gz/2"]
    gunzip = by_key["gzip/gz/1"]
    speed = bases / plain_2.call_seconds / MB
    vamb_plain = by_key["vamb/plain/1"].call_seconds / plain_2.call_seconds
    vamb_plain_cpu = by_key["vamb/plain/1"].call_cpu_seconds / plain_2.call_cpu_seconds
    vamb_gz = by_key["vamb/gz/1"].call_seconds / gz_2.call_seconds
    verdicts = [
        (
            f"plain FASTA, 2 threads: {speed:.0f} MB/s of sequence "
            f"(bar >= {BAR_MB_PER_SECOND:.0f}; the call used {plain_2.call_cpu_seconds:.2f} "
            f"CPU-s, {bases / plain_2.call_cpu_seconds / MB:.0f} MB per CPU-second)",
            speed >= BAR_MB_PER_SECOND,
        ),
        (
            f"plain FASTA, 2 threads vs VAMB's parser: {vamb_plain:.1f}x "
            f"(bar >= {BAR_VAMB_RATIO:.0f}x; {vamb_gz:.1f}x on gzip input; "
            f"{vamb_plain_cpu:.1f}x in CPU time)",
            vamb_plain >= BAR_VAMB_RATIO,
        ),
    ]
    for gz in (by_key["vaebin/gz/1"], gz_2):
        verdicts.append(
            (
                f"gzip input, {gz.case.threads} thread(s): "
                f"{gunzip.call_seconds / gz.call_seconds:.2f}x the speed of `gzip -dc` "
                f"({gz.call_seconds:.2f} s vs {gunzip.call_seconds:.2f} s; "
                f"whole process {gz.process_seconds:.2f} s) (bar >= 1x)",
                gz.call_seconds <= gunzip.call_seconds,
            )
        )
    for summary in summaries:
        if summary.case.tool != "vaebin" or summary.output_bytes is None:
            continue
        limit = 2 * summary.output_bytes + BAR_RSS_OVERHEAD_BYTES
        verdicts.append(
            (
                f"peak RSS, {summary.case.input_kind}, {summary.case.threads} thread(s): "
                f"{summary.peak_rss_bytes / MB:.0f} MB (bar < {limit / MB:.0f} MB = "
                f"2 x {summary.output_bytes / MB:.1f} MB + 150 MB)",
                summary.peak_rss_bytes < limit,
            )
        )
    return verdicts


def _git_revision() -> str:
    described = subprocess.run(
        ["git", "-C", str(REPO_DIR), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    )
    return described.stdout.strip() or "unknown"


def _vamb_environment() -> str:
    listed = subprocess.run(
        [
            str(_vamb_python()),
            "-c",
            "import importlib.metadata as m; print(*(p + ' ' + m.version(p) for p in "
            "('vamb', 'vambcore', 'numpy', 'torch')), sep=', ')",
        ],
        capture_output=True,
        text=True,
    )
    return listed.stdout.strip()


def render_section(
    summaries: list[Summary],
    data: dict[str, int],
    machine: dict[str, str],
    command: str,
    load_after: str,
) -> str:
    """The `## Composition` section of RESULTS.md: setting, table, ratios, bars and a reading."""
    bases = data["bases"]
    by_key = _by_key(summaries)
    plain_2, gz_2, gunzip = by_key["vaebin/plain/2"], by_key["vaebin/gz/2"], by_key["gzip/gz/1"]
    verdicts = _verdicts(summaries, bases)
    failed = [sentence for sentence, holds in verdicts if not holds]
    ratios = [
        ("vaebin-rs plain 2 threads vs VAMB plain", by_key["vamb/plain/1"], plain_2),
        ("vaebin-rs gzip 2 threads vs VAMB gzip", by_key["vamb/gz/1"], gz_2),
        ("vaebin-rs plain 2 threads vs numpy plain", by_key["numpy/plain/1"], plain_2),
        ("vaebin-rs gzip 1 thread vs `gzip -dc`", gunzip, by_key["vaebin/gz/1"]),
        ("vaebin-rs gzip 2 threads vs `gzip -dc`", gunzip, gz_2),
        ("vaebin-rs plain 2 threads vs 1 thread", by_key["vaebin/plain/1"], plain_2),
    ]
    reading = (
        "every bar of the issue passes in this run."
        if not failed
        else f"{len(verdicts) - len(failed)} of {len(verdicts)} bars pass; failing: "
        + "; ".join(failed)
        + "."
    )
    busiest_load = max(float(machine["load_average"].split()[0]), float(load_after.split()[0]))
    if busiest_load > int(machine["nproc"]):
        reading += (
            f" The machine was oversubscribed (1-minute load up to {busiest_load:.1f} on "
            f"{machine['nproc']} CPUs), so every process got only part of a core and wall "
            "times overstate what the tools need; the CPU-time columns do not depend on that."
        )
    lines = [
        SECTION_TITLE,
        "",
        f"Command: `{command}` (from the repository root, main `.venv`).",
        f"Machine: {machine['nproc']} CPUs (`nproc`), {machine['cpu_model']}, "
        f"{machine['memory']} RAM, {machine['kernel']}; shared with other work while measuring "
        f"(load average {machine['load_average']} before, {load_after} after).",
        f"Date: {machine['date_utc']} (`date -u`). Tree: `{_git_revision()}`.",
        f"VAMB environment: {_vamb_environment()}.",
        "",
        f"Input: {data['records']} simulated contigs, {bases / 1e6:.1f} Mbp; log-normal lengths "
        f"(median {data['median_length']} bp, N50 {data['n50']} bp, 1-500 kbp), 80-column "
        f"lines, one N run in {GAP_FRACTION:.0%} of contigs; {data['plain_bytes'] / MB:.0f} MB "
        f"plain, {data['gz_bytes'] / MB:.0f} MB gzip -6; both in the page cache. Minimum length "
        f"{data['min_length']} bp for every parser: {data['rows']} rows kept.",
        "",
        f"Each row: median of {data['repeats']} interleaved runs, each a fresh process. "
        "*Call s* times the parsing call inside the process (MB/s = sequence bases / call s; "
        "for gzip, its whole run). *Call CPU s* is the CPU time of all the process's threads "
        "over the same span, which load from other work barely changes. *Process s* adds "
        "interpreter start-up and imports (VAMB's import pulls in torch). *Threads* is the "
        "`threads` argument, the number of counting workers: vaebin-rs also runs one reader "
        "thread, and for gzip one inflating thread. *RSS bar* = 2 x output arrays + 150 MB.",
        "",
        *_table(summaries, bases),
        "",
        "Ratios of the medians (how many times less the first needs than the second):",
        "",
        "| Comparison | Call wall time | Call CPU time |",
        "|---|--:|--:|",
        *(
            f"| {label} | {slow.call_seconds / fast.call_seconds:.2f}x "
            f"| {slow.call_cpu_seconds / fast.call_cpu_seconds:.2f}x |"
            for label, slow, fast in ratios
        ),
        "",
        "Checks (asserted by the script): vaebin-rs counts equal the numpy counts exactly on "
        f"plain and gzip input ({data['rows']} x 136, column order included), its frequencies "
        "are those counts over their row sums, and VAMB keeps the same "
        f"{data['rows']} rows at the same minimum length.",
        "",
        "Bars:",
        "",
        *(f"- {'PASS' if holds else 'FAIL'}: {sentence}" for sentence, holds in verdicts),
        "",
        f"Reading: {reading}",
        "",
    ]
    return "\n".join(lines)


def write_section(section: str) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving the others untouched."""
    if not RESULTS_PATH.exists():
        RESULTS_PATH.write_text(
            "# Benchmark results\n\n"
            "Measured figures of the scripts in `benchmarks/`, one section per script.\n"
        )
    # Read as late as possible: other benchmarks write their own sections of the same file.
    text = RESULTS_PATH.read_text()
    pattern = rf"^{re.escape(SECTION_TITLE)}\n.*?(?=^## |\Z)"
    match = re.search(pattern, text, flags=re.MULTILINE | re.DOTALL)
    if match is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        # Notes written by hand at the end of the section outlive a rerun.
        notes_at = match.group().find(NOTES_TITLE)
        if notes_at >= 0:
            section += "\n" + match.group()[notes_at:].rstrip("\n") + "\n"
        separator = "\n" if match.end() < len(text) else ""
        text = text[: match.start()] + section + separator + text[match.end() :]
    partial = RESULTS_PATH.with_name(RESULTS_PATH.name + ".partial")
    partial.write_text(text)
    os.replace(partial, RESULTS_PATH)


def run_benchmark(args: argparse.Namespace, command: str) -> str:
    """Generate the input if needed, check the outputs agree, measure, and return the section."""
    plain_path = DATA_DIR / f"contigs_{args.megabases}Mbp_seed{args.seed}.fna"
    gz_path = _gz_path(plain_path)
    if not (plain_path.exists() and gz_path.exists()):
        print(f"generating {plain_path} and its gzip copy", file=sys.stderr)
        generate_contigs(plain_path, args.megabases * 1_000_000, args.seed)
    script = str(Path(__file__).resolve())
    check_argv = [sys.executable, script, "--worker", "check", "--input", str(plain_path)]
    check = run_child([*check_argv, "--min-length", str(args.min_length)])
    data: dict[str, int] = json.loads(check.stdout)
    data.update(
        plain_bytes=plain_path.stat().st_size,
        gz_bytes=gz_path.stat().st_size,
        min_length=args.min_length,
        repeats=args.repeats,
    )
    print(f"outputs agree: {data}", file=sys.stderr)

    for path in (plain_path, gz_path):  # into the page cache, so no run pays for the disk
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass
    machine = machine_description()
    summaries = measure(plain_path, args.min_length, args.repeats)
    for summary in summaries:
        _require(
            summary.rows in (None, data["rows"]),
            f"{summary.case.key} kept {summary.rows} rows, the numpy counter {data['rows']}",
        )
    load_after = " ".join(f"{load:.2f}" for load in os.getloadavg())
    return render_section(summaries, data, machine, command, load_after)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup-vamb", action="store_true", help="create the VAMB venv and exit")
    parser.add_argument("--megabases", type=int, default=200, help="size of the test FASTA [200]")
    parser.add_argument("--min-length", type=int, default=2000, help="contig length cut-off [2000]")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case, medians kept [3]")
    parser.add_argument("--seed", type=int, default=4, help="seed of the simulated contigs [4]")
    parser.add_argument("--write-results", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument(
        "--worker", choices=["vaebin", "numpy", "vamb", "check"], help=argparse.SUPPRESS
    )
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "check":
        print(json.dumps(_check_outputs(args.input, args.min_length)))
        return 0
    if args.worker is not None:
        print(json.dumps(_worker(args.worker, args.input, args.threads, args.min_length)))
        return 0
    if args.setup_vamb:
        print(f"VAMB {VAMB_VERSION} ready: {setup_vamb()}")
        return 0
    if not _vamb_ready():
        parser.error(f"no VAMB {VAMB_VERSION} in {VAMB_ENV_DIR}: run with --setup-vamb first")
    command = shlex.join(["python", "benchmarks/composition.py", *sys.argv[1:]])
    try:
        section = run_benchmark(args, command)
    except subprocess.CalledProcessError as error:
        print(f"{shlex.join(error.cmd)} failed:\n{error.stderr}", file=sys.stderr)
        return 1
    print(section)
    if args.write_results:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
