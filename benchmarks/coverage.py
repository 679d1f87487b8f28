"""Coverage benchmark (issue #5): vaebin-rs against `jgi_summarize_bam_contig_depths` and the cost
of merely decoding the BAM (`samtools view -c -@2`), on a generated BAM of 20 M reads.

    python benchmarks/coverage.py                  # generate (once, cached), measure, print
    python benchmarks/coverage.py --write-results  # ... and update the `## Coverage` section

The BAM is built here: numpy lays out fixed-size BAM records (150 bp paired-end reads, a mix of
plain, soft-clipped, deletion and insertion CIGARs, NM/MD/AS/XS tags, binned qualities, a few
duplicates, secondaries and unmapped mates) already in coordinate order, and `samtools view -b`
compresses that raw BAM stream into BGZF at its default level. It is cached under
`benchmarks/data/coverage/` (git-ignored).

Every measured run is a fresh child process (peak RSS from GNU time). The vaebin-rs runs are the
`vaebin-rs coverage` command; the table it writes is checked against MetaBAT2's.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _measure import MB, ChildRun, machine_description, run_child

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent
DATA_DIR = BENCHMARKS_DIR / "data" / "coverage"
RESULTS_PATH = BENCHMARKS_DIR / "RESULTS.md"
SECTION_TITLE = "## Coverage"
VAEBIN = str(Path(sys.executable).with_name("vaebin-rs"))

READ_LENGTH = 150
RECORD_BYTES = 305
"""Every record has this size: names are padded so that name + CIGAR always take 23 bytes."""
NAME_AND_CIGAR_BYTES = 23
CIGARS = {
    # kind: (CIGAR operations as (length, op code), reference span, probability)
    "150M": ([(150, 0)], 150, 0.85),
    "5S145M": ([(5, 4), (145, 0)], 145, 0.07),
    "70M2D80M": ([(70, 0), (2, 2), (80, 0)], 152, 0.04),
    "70M2I78M": ([(70, 0), (2, 1), (78, 0)], 148, 0.04),
}
QUALITY_BINS = np.array([2, 12, 23, 37], dtype=np.uint8)  # NovaSeq-style binned qualities
QUALITY_WEIGHTS = np.array([0.02, 0.08, 0.2, 0.7])
BASE_CODES = np.array([1, 2, 4, 8], dtype=np.uint8)  # A, C, G, T in BAM's 4-bit code
CHUNK_READS = 400_000
LIBRARY_ONE = "vaebin-rs, 1 thread (Python API)"
LIBRARY_TWO = "vaebin-rs, 2 threads (Python API)"
COMMAND_TWO = "`vaebin-rs coverage --threads 2` (CLI)"
METABAT = "jgi_summarize_bam_contig_depths (MetaBAT 2.15)"
SAMTOOLS = "`samtools view -c -@2` (decode only)"


def make_contigs(rng: np.random.Generator, count: int) -> tuple[list[str], np.ndarray]:
    lengths = np.clip(rng.lognormal(np.log(12_000), 1.0, count), 2_000, 600_000).astype(np.int64)
    return [f"contig_{i:05d}" for i in range(count)], lengths


def write_contigs(path: Path, names: list[str], lengths: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    with open(path, "w") as handle:
        for name, length in zip(names, lengths, strict=True):
            sequence = np.array(list(b"ACGT"), dtype=np.uint8)[rng.integers(0, 4, int(length))]
            handle.write(f">{name}\n{sequence.tobytes().decode()}\n")


def bam_header(names: list[str], lengths: np.ndarray) -> bytes:
    text = "@HD\tVN:1.6\tSO:coordinate\n" + "".join(
        f"@SQ\tSN:{name}\tLN:{int(length)}\n" for name, length in zip(names, lengths, strict=True)
    )
    parts = [b"BAM\x01", len(text).to_bytes(4, "little"), text.encode()]
    parts.append(len(names).to_bytes(4, "little"))
    for name, length in zip(names, lengths, strict=True):
        encoded = name.encode() + b"\0"
        parts += [len(encoded).to_bytes(4, "little"), encoded, int(length).to_bytes(4, "little")]
    return b"".join(parts)


def region_bins(begin: np.ndarray, end: np.ndarray) -> np.ndarray:
    """BAM's `reg2bin` for [begin, end)."""
    last = end - 1
    levels = [(14, 4681), (17, 585), (20, 73), (23, 9), (26, 1)]
    conditions = [(begin >> shift) == (last >> shift) for shift, _ in levels]
    choices = [offset + (begin >> shift) for shift, offset in levels]
    return np.select(conditions, choices, 0).astype(np.uint16)


def put(records: np.ndarray, offset: int, values: np.ndarray, dtype: str) -> None:
    """Write one little-endian field of every record."""
    raw = np.ascontiguousarray(values.astype(dtype)).view(np.uint8)
    width = np.dtype(dtype).itemsize
    records[:, offset : offset + width] = raw.reshape(len(records), width)


def name_bytes(first_index: int, count: int, length: int) -> np.ndarray:
    """`r<9 digits>` padded with `_` to `length` characters, then NUL."""
    index = np.arange(first_index, first_index + count, dtype=np.int64)
    digits = (index[:, None] // 10 ** np.arange(8, -1, -1)) % 10 + ord("0")
    out = np.full((count, length + 1), ord("_"), dtype=np.uint8)
    out[:, 0] = ord("r")
    out[:, 1:10] = digits
    out[:, length] = 0
    return out


def build_records(
    rng: np.random.Generator,
    reference: np.ndarray,
    position: np.ndarray,
    kind: np.ndarray,
    first_index: int,
) -> np.ndarray:
    """Fixed-size BAM records (block size included) for mapped reads in coordinate order."""
    count = len(reference)
    records = np.zeros((count, RECORD_BYTES), dtype=np.uint8)
    kinds = list(CIGARS)
    spans = np.array([CIGARS[k][1] for k in kinds])[kind]
    n_cigar = np.array([len(CIGARS[k][0]) for k in kinds])[kind]
    name_length = NAME_AND_CIGAR_BYTES - 4 * n_cigar  # with the NUL
    roll = rng.random(count)
    flag = (
        0x1
        | 0x2
        | np.where(rng.random(count) < 0.5, 0x40, 0x80)
        | np.where(rng.random(count) < 0.5, 0x10, 0x20)
    )
    flag |= np.where(roll < 0.01, 0x400, 0) | np.where((roll >= 0.01) & (roll < 0.015), 0x100, 0)
    flag |= np.where((roll >= 0.015) & (roll < 0.02), 0x800, 0)
    mapq = np.where(rng.random(count) < 0.9, 60, rng.integers(0, 31, count))
    edit = rng.choice([0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 6, 9], count)
    edit = edit + np.where(kind >= 2, 2, 0)
    put(records, 0, np.full(count, RECORD_BYTES - 4), "<u4")
    put(records, 4, reference, "<i4")
    put(records, 8, position, "<i4")
    records[:, 12] = name_length
    records[:, 13] = mapq
    put(records, 14, region_bins(position, position + spans), "<u2")
    put(records, 16, n_cigar, "<u2")
    put(records, 18, flag, "<u2")
    put(records, 20, np.full(count, READ_LENGTH), "<u4")
    put(records, 24, reference, "<i4")
    put(records, 28, position + rng.integers(-300, 300, count).clip(-position), "<i4")
    put(records, 32, rng.integers(-500, 500, count), "<i4")
    for code, name in enumerate(kinds):
        rows = np.flatnonzero(kind == code)
        if rows.size == 0:
            continue
        operations = CIGARS[name][0]
        length = NAME_AND_CIGAR_BYTES - 4 * len(operations)
        records[rows, 36 : 36 + length] = name_bytes(first_index, count, length - 1)[rows]
        words = np.array([(n << 4) | op for n, op in operations], dtype="<u4").view(np.uint8)
        records[rows, 36 + length : 36 + NAME_AND_CIGAR_BYTES] = words
    high = BASE_CODES[rng.integers(0, 4, (count, READ_LENGTH // 2), dtype=np.uint8)]
    low = BASE_CODES[rng.integers(0, 4, (count, READ_LENGTH // 2), dtype=np.uint8)]
    records[:, 59:134] = (high << 4) | low
    records[:, 134:284] = QUALITY_BINS[
        rng.choice(4, (count, READ_LENGTH), p=QUALITY_WEIGHTS).astype(np.uint8)
    ]
    records[:, 284:293] = np.frombuffer(b"MDZ75A74\0", dtype=np.uint8)
    records[:, 293:296] = np.frombuffer(b"ASC", dtype=np.uint8)
    records[:, 296] = 150 - 5 * np.minimum(edit, 30)
    records[:, 297:300] = np.frombuffer(b"XSC", dtype=np.uint8)
    records[:, 300] = rng.integers(0, 100, count)
    records[:, 301:304] = np.frombuffer(b"NMC", dtype=np.uint8)
    records[:, 304] = edit
    return records


def unmapped_records(rng: np.random.Generator, count: int, first_index: int) -> np.ndarray:
    records = np.zeros((count, RECORD_BYTES), dtype=np.uint8)
    put(records, 0, np.full(count, RECORD_BYTES - 4), "<u4")
    put(records, 4, np.full(count, -1), "<i4")
    put(records, 8, np.full(count, -1), "<i4")
    records[:, 12] = NAME_AND_CIGAR_BYTES
    put(records, 14, np.full(count, 4680), "<u2")
    put(records, 18, np.full(count, 0x1 | 0x4 | 0x8 | 0x40), "<u2")
    put(records, 20, np.full(count, READ_LENGTH), "<u4")
    put(records, 24, np.full(count, -1), "<i4")
    put(records, 28, np.full(count, -1), "<i4")
    records[:, 36 : 36 + NAME_AND_CIGAR_BYTES] = name_bytes(
        first_index, count, NAME_AND_CIGAR_BYTES - 1
    )
    records[:, 59:134] = 0x11
    records[:, 134:284] = 2
    records[:, 284:293] = np.frombuffer(b"MDZ75A74\0", dtype=np.uint8)
    records[:, 293:305] = np.frombuffer(b"ASC\0XSC\0NMC\0", dtype=np.uint8)
    return records


def generate(reads: int, contigs_path: Path, bam_path: Path) -> None:
    """Write the contigs and a coordinate-sorted BAM of `reads` records."""
    rng = np.random.default_rng(20)
    names, lengths = make_contigs(rng, 6_000)
    write_contigs(contigs_path, names, lengths)
    abundance = rng.lognormal(0.0, 1.2, len(lengths))
    unmapped = reads // 100
    weights = lengths * abundance
    per_contig = rng.multinomial(reads - unmapped, weights / weights.sum())
    temporary = bam_path.with_suffix(".tmp.bam")
    compressor = subprocess.Popen(
        ["samtools", "view", "-@2", "-b", "-o", str(temporary), "-"], stdin=subprocess.PIPE
    )
    assert compressor.stdin is not None
    compressor.stdin.write(bam_header(names, lengths))
    kinds = np.array([CIGARS[k][2] for k in CIGARS])
    written = 0
    contig = 0
    while contig < len(lengths):
        last = contig
        while last < len(lengths) and per_contig[contig : last + 1].sum() < CHUNK_READS:
            last += 1
        chunk = np.arange(contig, min(last + 1, len(lengths)))
        reference = np.repeat(chunk, per_contig[chunk])
        kind = rng.choice(len(kinds), len(reference), p=kinds / kinds.sum())
        room = lengths[reference] - 160
        position = (rng.random(len(reference)) * room).astype(np.int64)
        order = np.lexsort((position, reference))
        reference, position, kind = reference[order], position[order], kind[order]
        records = build_records(rng, reference, position, kind, written)
        compressor.stdin.write(records.tobytes())
        written += len(records)
        contig = chunk[-1] + 1
        print(f"\r  {written / 1e6:.1f} M reads", end="", file=sys.stderr, flush=True)
    compressor.stdin.write(unmapped_records(rng, unmapped, written).tobytes())
    compressor.stdin.close()
    if compressor.wait() != 0:
        raise RuntimeError("samtools view failed while writing the benchmark BAM")
    temporary.rename(bam_path)
    print(file=sys.stderr)


def worker(threads: int, contigs: str, bam: str, out: str) -> None:
    """The library path of `vaebin-rs coverage`: features.coverage and write_depth_table."""
    from vaebin import depths, features
    from vaebin.io.depth_table import write_depth_table

    result = features.coverage(contigs, [bam], threads=threads)
    write_depth_table(out, depths.table_from_coverage(result))


def measure(argv: list[str], niceness: int) -> ChildRun:
    print("  $", shlex.join(argv), file=sys.stderr, flush=True)
    return run_child(["nice", "-n", str(niceness), *argv] if niceness else argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=20_000_000)
    parser.add_argument("--rounds", type=int, default=1, help="Interleaved repetitions.")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="Run every measured tool at this niceness (e.g. -15 as root, so that other work on "
        "a shared machine yields to the benchmark alike for all tools).",
    )
    parser.add_argument("--worker", nargs=4, metavar=("THREADS", "CONTIGS", "BAM", "OUT"))
    arguments = parser.parse_args()
    if arguments.worker:
        threads, contigs_path, bam_path, out_path = arguments.worker
        worker(int(threads), contigs_path, bam_path, out_path)
        return
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    contigs = DATA_DIR / "contigs.fna"
    bam = DATA_DIR / f"reads_{arguments.reads}.bam"
    if not bam.exists():
        print(f"generating {bam} ...", file=sys.stderr)
        started = time.perf_counter()
        generate(arguments.reads, contigs, bam)
        print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if arguments.generate_only:
        return
    out = DATA_DIR / "out"
    out.mkdir(exist_ok=True)
    before = machine_description()
    script = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    cases = {
        LIBRARY_ONE: [*script, "1", str(contigs), str(bam), str(out / "vaebin_1.tsv")],
        LIBRARY_TWO: [*script, "2", str(contigs), str(bam), str(out / "vaebin_2.tsv")],
        COMMAND_TWO: [
            VAEBIN, "coverage", "--contigs", str(contigs), "--bam", str(bam), "-q",
            "--out", str(out / "vaebin_cli.tsv"), "--threads", "2",
        ],
        METABAT: [
            "jgi_summarize_bam_contig_depths", "--outputDepth", str(out / "metabat.tsv"), str(bam),
        ],
        SAMTOOLS: ["samtools", "view", "-c", "-@2", str(bam)],
    }  # fmt: skip
    runs: dict[str, list[ChildRun]] = {name: [] for name in cases}
    for _ in range(arguments.rounds):
        for name, argv in cases.items():
            runs[name].append(measure(argv, arguments.nice))
    after = machine_description()
    records = int(runs[SAMTOOLS][0].stdout.strip())
    metabat_table = (out / "metabat.tsv").read_text()
    same = {
        label: (out / f"vaebin_{label}.tsv").read_text() == metabat_table
        for label in ("1", "2", "cli")
    }
    section = render(arguments, bam, records, runs, before, after, same)
    print(section)
    if arguments.write_results:
        write_section(section)


def render(
    arguments: argparse.Namespace,
    bam: Path,
    records: int,
    runs: dict[str, list[ChildRun]],
    before: dict[str, str],
    after: dict[str, str],
    same: dict[str, bool],
) -> str:
    best = {name: min(run.wall_seconds for run in runs[name]) for name in runs}
    tree = subprocess.run(
        ["git", "log", "-1", "--format=%h %s"], capture_output=True, text=True, cwd=REPO_DIR
    ).stdout.strip()
    lines = [
        SECTION_TITLE,
        "",
        f"Command: `python benchmarks/coverage.py --reads {arguments.reads} --rounds "
        f"{arguments.rounds}{f' --nice {arguments.nice}' if arguments.nice else ''} "
        "--write-results` (from the repository root, main `.venv`).",
        f"Machine: {before['nproc']} CPUs, {before['cpu_model']}, {before['memory']} RAM, "
        f"{before['kernel']} (a 2-core Debian bookworm VM), shared with other work while "
        f"measuring (load average {before['load_average']} before, {after['load_average']} after)"
        + (
            f"; every measured process ran at nice {arguments.nice}, so that work yielded to it."
            if arguments.nice
            else "."
        ),
        f"Date: {before['date_utc']}. Tree: `{tree}`.",
        "",
        f"Input: `{bam.name}`, {records:,} records ({bam.stat().st_size / MB:.0f} MB BGZF, "
        "samtools' default level), 6,000 contigs (2-600 kbp, log-normal), 150 bp paired reads with "
        "plain/clipped/indel CIGARs, NM/MD/AS/XS tags, binned qualities, 1 % duplicates, 0.5 % "
        "secondary, 0.5 % supplementary, 1 % unmapped; in the page cache.",
        "",
        "Each row: best of the rounds, each a fresh process (wall time from spawn to exit; the "
        "vaebin-rs rows include the CLI's start-up and writing the table).",
        "",
        "| Tool | Wall s | M reads/s | CPU s | Peak RSS MB |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, measured in runs.items():
        fastest = min(measured, key=lambda run: run.wall_seconds)
        lines.append(
            f"| {name} | {fastest.wall_seconds:.1f} | {records / fastest.wall_seconds / 1e6:.2f} "
            f"| {fastest.cpu_seconds:.1f} | {fastest.peak_rss_bytes / MB:.0f} |"
        )
    two = best[LIBRARY_TWO]
    metabat, samtools = best[METABAT], best[SAMTOOLS]
    ours = [run for name in (LIBRARY_ONE, LIBRARY_TWO) for run in runs[name]]
    peak = max(run.peak_rss_bytes for run in ours)
    cpu = {name: min(run.cpu_seconds for run in runs[name]) for name in runs}
    yes = {True: "yes", False: "NO"}
    lines += [
        "",
        f"- jgi_summarize_bam_contig_depths / vaebin-rs 2 threads, wall: **{metabat / two:.2f}x** "
        f"(bar: at least 2x); CPU time: {cpu[METABAT] / cpu[LIBRARY_TWO]:.2f}x",
        f"- vaebin-rs 2 threads / samtools view -c -@2, wall: **{two / samtools:.2f}x** "
        f"(bar: at most 1.5x); CPU time: {cpu[LIBRARY_TWO] / cpu[SAMTOOLS]:.2f}x",
        f"- vaebin-rs 1 thread / 2 threads, wall: {best[LIBRARY_ONE] / two:.2f}x",
        f"- vaebin-rs peak RSS: **{peak / MB:.0f} MB** (bar: under 300 MB); the CLI row adds "
        "what its imports cost (it loads torch for the binning commands)",
        "- depth table identical to MetaBAT2's, byte for byte: "
        f"1 thread {yes[same['1']]}, 2 threads {yes[same['2']]}, CLI {yes[same['cli']]}",
        "",
        "Reading: about 70 % of vaebin-rs's CPU time is libdeflate inflating BGZF blocks (perf), "
        "the inflater samtools and MetaBAT2 also use through htslib, so on CPU time alone "
        "vaebin-rs is about 1.5x cheaper than MetaBAT2 and a little cheaper than samtools' bare "
        "decoding; the rest of the 2x over MetaBAT2 comes from inflating on two threads while "
        "MetaBAT2 reads one BAM on one. Wall-time ratios therefore move with the load of the "
        "machine (no idle core, no gain from the second thread); the CPU-time ratios do not.",
    ]
    return "\n".join(lines) + "\n"


def write_section(section: str) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving the others untouched."""
    text = RESULTS_PATH.read_text() if RESULTS_PATH.exists() else "# Benchmark results\n"
    start = text.find(SECTION_TITLE + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        following = text.find("\n## ", start + len(SECTION_TITLE))
        end = len(text) if following < 0 else following + 1
        text = text[:start] + section + ("\n" + text[end:] if following >= 0 else "")
    RESULTS_PATH.write_text(text)


if __name__ == "__main__":
    os.chdir(REPO_DIR)
    main()
