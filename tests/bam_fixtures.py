"""BAM fixtures built with pysam, and an independent pure-Python model of MetaBAT2's
`jgi_summarize_bam_contig_depths` to check the Rust coverage against.

The model walks the reads with pysam, one base at a time, and computes the statistics in exact
(fsum) arithmetic; the Rust core works from packed BAM bytes with difference arrays and float32
sums, so agreement is a real check rather than the same code twice.
"""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam

METABAT = shutil.which("jgi_summarize_bam_contig_depths")

SKIPPED_FLAGS = 0x100 | 0x200 | 0x400  # secondary, QC-fail, duplicate
MATCH, INSERTION, DELETION, SKIP, SOFT_CLIP, HARD_CLIP, PAD, EQUAL, DIFF = range(9)
ALIGNED = (MATCH, EQUAL, DIFF)
ON_REFERENCE = (MATCH, DELETION, SKIP, EQUAL, DIFF)
U32 = 0xFFFFFFFF


@dataclass
class Read:
    """One alignment record of a fixture; `contig=None` makes an unplaced unmapped read."""

    contig: str | None
    position: int = 0
    cigar: str = "100M"
    flag: int = 0
    mapq: int = 60
    nm: int | None = 0
    sequence_length: int | None = None
    name: str | None = None

    def query_length(self) -> int:
        if self.sequence_length is not None:
            return self.sequence_length
        return sum(int(n) for n, op in re.findall(r"(\d+)([MIS=X])", self.cigar))

    def reference_span(self) -> int:
        return sum(int(n) for n, op in re.findall(r"(\d+)([MDN=X])", self.cigar))


def write_fasta(path: Path, contigs: Sequence[tuple[str, int]]) -> Path:
    """A FASTA of the contigs (sequence content does not matter to coverage)."""
    with open(path, "w") as handle:
        for name, length in contigs:
            handle.write(f">{name} test contig\n")
            sequence = "ACGT" * (length // 4 + 1)
            for start in range(0, length, 60):
                handle.write(sequence[start : min(start + 60, length)] + "\n")
    return path


def write_bam(
    path: Path,
    contigs: Sequence[tuple[str, int]],
    reads: Sequence[Read],
    sort: bool = True,
) -> Path:
    """Write `reads` as a BAM (coordinate-sorted with samtools' sort unless `sort=False`)."""
    header = {
        "HD": {"VN": "1.6", "SO": "coordinate" if sort else "unsorted"},
        "SQ": [{"SN": name, "LN": length} for name, length in contigs],
    }
    index = {name: i for i, (name, _) in enumerate(contigs)}
    unsorted = path.with_name(path.name + ".unsorted.bam") if sort else path
    with pysam.AlignmentFile(str(unsorted), "wb", header=header) as out:
        for number, read in enumerate(reads):
            record = pysam.AlignedSegment(out.header)
            record.query_name = read.name or f"read{number}"
            record.flag = read.flag
            if read.contig is None:
                record.reference_id = -1
                record.reference_start = -1
                record.flag |= 0x4
            else:
                record.reference_id = index[read.contig]
                record.reference_start = read.position
                record.cigarstring = read.cigar
            record.mapping_quality = read.mapq
            length = read.query_length()
            if length:
                record.query_sequence = "ACGT" * (length // 4) + "ACGT"[: length % 4]
                record.query_qualities = pysam.qualitystring_to_array("I" * length)
            if read.nm is not None:
                record.set_tag("NM", read.nm)
            out.write(record)
    if sort:
        pysam.sort("-o", str(path), str(unsorted))
        unsorted.unlink()
    return path


def _cut_at_contig_end(cigar: list[tuple[int, int]], position: int, length: int):
    """MetaBAT turns the operation that carries an alignment past the contig end into a clip."""
    reference = position
    for i, (op, n) in enumerate(cigar):
        if op in ON_REFERENCE:
            reference += n
        if reference > length:
            return cigar[:i]
    return cigar


def _identity(cigar: list[tuple[int, int]], nm_tag: int | None) -> float:
    """exact / (exact + mismatches + insertions + deletions), MetaBAT's uint32/float32 way."""
    exact = mismatches = insertions = deletions = m_bases = 0
    equal_or_diff = False
    for op, n in cigar:
        if op == MATCH:
            m_bases += n
            exact += n
        elif op == DIFF:
            equal_or_diff = True
            mismatches += n
        elif op == EQUAL:
            equal_or_diff = True
            exact += n
        elif op == INSERTION:
            insertions += n
        elif op == DELETION:
            deletions += n
    if nm_tag is not None:
        indels = insertions + deletions
        nm = nm_tag if nm_tag >= indels else indels + mismatches
        if not equal_or_diff or (m_bases > 0 and nm != indels + mismatches):
            if equal_or_diff and nm == indels + mismatches + m_bases:
                mismatches += m_bases
                exact -= m_bases
            else:
                new = (nm - indels) & U32
                exact = (exact - ((new - mismatches) & U32)) & U32
                mismatches = new
    total = (exact + mismatches + insertions + deletions) & U32
    if total == 0:
        return math.nan
    return float(np.float32(exact) / np.float32(total))


@dataclass
class ReferenceDepths:
    """Per contig in BAM header order."""

    names: list[str]
    lengths: list[int]
    means: list[float]
    variances: list[float]
    edge_trim: int


def reference_depths(
    bam: Path,
    mode: str = "metabat",
    min_identity: float = 0.97,
    trim_edges: int = 75,
    min_mapq: int = 0,
) -> ReferenceDepths:
    """Depth statistics of every contig, computed read by read and base by base."""
    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as handle:
        names = list(handle.references)
        lengths = list(handle.lengths)
        stats = [(0.0, 0.0)] * len(lengths)
        read_bases = records = average = 0
        current: int | None = None
        depth: list[int] = []

        def edge() -> int:
            return min(trim_edges, average) if mode == "metabat" else 0

        def finish(contig: int) -> tuple[float, float]:
            length = lengths[contig]
            if mode == "mean":
                window = depth[:length]
                mean = math.fsum(window) / length
                spread = math.fsum((d - mean) ** 2 for d in window)
                return mean, spread / (length - 1) if length > 1 else 0.0
            trim = edge()
            start, end = (trim, length - trim) if length > 2 * trim + 1 else (0, length)
            window = depth[start:end]
            if len(window) <= 2:
                return 0.0, 0.0
            mean = math.fsum(window) / len(window)
            return mean, math.fsum((d - mean) ** 2 for d in window) / (len(window) - 1)

        for record in handle.fetch(until_eof=True):
            read_bases += record.query_length
            records += 1
            if record.flag & SKIPPED_FLAGS or record.is_unmapped:
                continue
            if record.mapping_quality < min_mapq:
                continue
            average = read_bases // records
            contig = record.reference_id
            if contig != current:
                if current is not None:
                    stats[current] = finish(current)
                current = contig
                depth = [0] * lengths[contig]
            length = lengths[contig]
            position = record.reference_start
            cigar = [(op, n) for op, n in record.cigartuples or []]
            if 0 <= position < length:
                cigar = _cut_at_contig_end(cigar, position, length)
            if mode == "metabat":
                nm = record.get_tag("NM") if record.has_tag("NM") else None
                if _identity(cigar, nm) < np.float32(min_identity):
                    continue
            if not 0 <= position < length:
                continue
            reference = position
            for op, n in cigar:
                if op in ALIGNED:
                    for base in range(reference, reference + n):
                        depth[base] += 1
                if op in ON_REFERENCE:
                    reference += n
        if current is not None:
            stats[current] = finish(current)
    return ReferenceDepths(
        names=names,
        lengths=lengths,
        means=[m for m, _ in stats],
        variances=[v for _, v in stats],
        edge_trim=edge(),
    )


def reference_total_depth(
    lengths: Sequence[int], means: np.ndarray, edge_trims: Sequence[int]
) -> np.ndarray:
    """MetaBAT's totalAvgDepth: trimmed-length-weighted whole bases, times the sample count."""
    totals = []
    for row, length in enumerate(lengths):
        bases = 0
        trimmed_total = 0.0
        for column, trim in enumerate(edge_trims):
            trimmed = length if 2 * trim >= length else length - 2 * trim
            bases += math.floor(means[row, column] * trimmed + 0.5)
            trimmed_total += trimmed
        totals.append(bases / trimmed_total * len(edge_trims) if trimmed_total else 0.0)
    return np.array(totals)


def run_metabat(bams: Sequence[Path], *options: str) -> str:
    """The depth table `jgi_summarize_bam_contig_depths` writes for `bams`."""
    assert METABAT is not None
    result = subprocess.run(
        [METABAT, "--outputDepth", "/dev/stdout", *options, *map(str, bams)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def random_cigar(rng: random.Random, read_length: int) -> str:
    """A plausible short-read CIGAR of `read_length` query bases."""
    if rng.random() < 0.4:
        return f"{read_length}M"
    match = "=" if rng.random() < 0.2 else "M"
    ops: list[str] = []
    left = read_length
    if rng.random() < 0.1:
        ops.append(f"{rng.randint(1, 30)}H")
    if rng.random() < 0.3:
        clip = rng.randint(1, 20)
        ops.append(f"{clip}S")
        left -= clip
    first = rng.randint(5, max(6, left - 10))
    ops.append(f"{first}{match}")
    left -= first
    kind = rng.random()
    if kind < 0.3:
        ops.append(f"{rng.randint(1, 6)}D")
    elif kind < 0.6 and left > 3:
        inserted = rng.randint(1, 3)
        ops.append(f"{inserted}I")
        left -= inserted
    elif kind < 0.7:
        ops.append(f"{rng.randint(1, 20)}N")
    if match == "=" and left > 2 and rng.random() < 0.5:
        ops.append("1X")
        left -= 1
    if left > 5 and rng.random() < 0.2:
        clip = rng.randint(1, left - 2)
        ops.append(f"{left - clip}{match}")
        ops.append(f"{clip}S")
    else:
        ops.append(f"{left}{match}")
    return "".join(ops)


def random_sample(rng: random.Random, contigs: Sequence[tuple[str, int]], reads: int) -> list[Read]:
    """Reads of one random length class with random flags, MAPQs, NMs and CIGARs; none runs
    past a contig end (MetaBAT aborts on those when the last operation crosses the end)."""
    base_length = rng.choice([30, 50, 74, 100, 150])
    out: list[Read] = []
    for _ in range(reads):
        name, length = rng.choice(contigs)
        cigar = random_cigar(rng, max(10, base_length + rng.randint(-5, 5)))
        read = Read(name, cigar=cigar)
        if read.reference_span() > length:
            continue
        read.position = rng.randint(0, length - read.reference_span())
        roll = rng.random()
        read.flag = 0x100 if roll < 0.05 else 0x400 if roll < 0.1 else 0x200 if roll < 0.13 else 0
        if 0.13 <= roll < 0.2:
            read.flag = 0x800
        if rng.random() < 0.1:
            read.flag |= 0x10
        read.mapq = rng.choice([0, 0, 1, 20, 60, 255])
        read.nm = None if rng.random() < 0.05 else rng.choice([0, 0, 0, 1, 2, 3, 5, 10])
        out.append(read)
    for _ in range(rng.randint(0, 5)):
        out.append(Read(None, sequence_length=rng.randint(10, 200), nm=None))
    return out


def random_contigs(rng: random.Random) -> list[tuple[str, int]]:
    """A few contigs, some shorter than the edge trim zone, some of read length."""
    return [
        (
            f"contig_{i}",
            rng.choice([rng.randint(1, 200), rng.randint(140, 160), rng.randint(200, 3000)]),
        )
        for i in range(rng.randint(1, 8))
    ]
