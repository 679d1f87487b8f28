"""Seed corpora for the fuzz targets, built from the test fixtures.

`python fuzz/seeds.py OUTDIR` writes OUTDIR/<target>/<name> for every target of fuzz/ and the
depth-table target: BAMs written by tests/bam_fixtures.py (pysam), FASTA/FASTQ like the tests
use, and MetaBAT2 depth tables. The first byte of a Rust seed is the target's mode byte (see the
comment at the top of each fuzz_targets/*.rs): the same file is offered in several modes.
Deterministic (seeded), a few hundred KB in all; nothing of it is committed.
"""

from __future__ import annotations

import gzip
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import bam_fixtures  # noqa: E402  (tests/ is not a package)


def write_seed(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def bam_seeds(out: Path, scratch: Path) -> None:
    """Raw BAM files (mode 0) and their inflated streams to be re-wrapped (odd modes)."""
    rng = random.Random(16)
    for number in range(6):
        contigs = bam_fixtures.random_contigs(rng)
        reads = bam_fixtures.random_sample(rng, contigs, rng.randint(1, 30))
        path = bam_fixtures.write_bam(scratch / f"sample{number}.bam", contigs, reads)
        raw = path.read_bytes()
        inflated = gzip.decompress(raw)
        write_seed(out, f"raw{number}", b"\x00" + raw)
        # Odd modes: bits 1-6 pick the BGZF payload size, bit 7 the depth mode.
        for mode in (0x01, 0x03, 0x07, 0x0B, 0x81):
            write_seed(out, f"stream{number}_{mode:02x}", bytes([mode]) + inflated)
    # A read of many CIGAR operations.
    contigs = [("long", 2000)]
    read = bam_fixtures.Read("long", 10, cigar="50M" + "1I1M" * 20 + "50M", nm=20)
    path = bam_fixtures.write_bam(scratch / "long.bam", contigs, [read])
    write_seed(out, "long_stream", b"\x09" + gzip.decompress(path.read_bytes()))


FASTA = b">contig_1 first\nACGTACGTNNacgt\nACG\n>contig_2\r\nGGGCCCAAATTT\r\n>empty\n>c3\nA\n"
FASTQ = b"@read1 x\nACGTN\n+\nIIIII\n@read2\nGGCC\n+read2\n!!!!\n"


def sequence_seeds(out_reader: Path, out_blocks: Path) -> None:
    rng = random.Random(16)
    long_fasta = b"".join(
        b">r%d\n" % i
        + b"\n".join(
            bytes(rng.choice(b"ACGT") for _ in range(60)) for _ in range(rng.randint(0, 5))
        )
        + b"\n"
        for i in range(20)
    )
    with tempfile.TemporaryDirectory() as scratch:
        fixture = bam_fixtures.write_fasta(Path(scratch) / "c.fa", [("a", 150), ("b", 301)])
        fixture_fasta = fixture.read_bytes()
    texts = {"fasta": FASTA, "fastq": FASTQ, "long": long_fasta, "fixture": fixture_fasta}
    for name, text in texts.items():
        # sequence_reader: bits 0-1 plain / gzip / gzip members, bit 2 qualities, bits 3-4 cut-off.
        for mode in (0x00, 0x01, 0x12, 0x04, 0x08, 0x18):
            write_seed(out_reader, f"{name}_{mode:02x}", bytes([mode]) + text)
        write_seed(out_reader, f"{name}_gz", b"\x00" + gzip.compress(text))
        # fasta_blocks: bits 0-2 block size, 3-4 k, 5 normalise, 6 cut-off, 7 gzip.
        for mode in (0x03, 0x18, 0x2D, 0x47, 0x9E):
            write_seed(out_blocks, f"{name}_{mode:02x}", bytes([mode]) + text)


def depth_table_seeds(out: Path) -> None:
    header = "contigName\tcontigLen\ttotalAvgDepth"
    write_seed(
        out,
        "two_samples",
        (
            f"{header}\ts1.bam\ts1.bam-var\ts2.bam\ts2.bam-var\n"
            "contig_1\t1500\t3.5\t2\t0.5\t1.5\t0.25\n"
            "contig_2\t2.5e+06\t1\t0.5\t0\t0.5\t0\n"
        ).encode(),
    )
    write_seed(
        out,
        "no_variance",
        f"{header}\ta.bam\ncontig_1\t100\t1\t1\r\ncontig_2\t200\t0\t0\r\n".encode(),
    )


def main() -> None:
    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="fuzz-seeds-") as scratch:
        bam_seeds(out / "bam", Path(scratch))
    sequence_seeds(out / "sequence_reader", out / "fasta_blocks")
    depth_table_seeds(out / "depth_table")


if __name__ == "__main__":
    main()
