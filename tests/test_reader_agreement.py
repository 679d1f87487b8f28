"""One sequence reader, one set of rules: the same odd and malformed FASTA files given to
`featurize`, to `coverage` (with a BAM whose header lists the same contigs) and to the long-read
features must get the same answer from each, and the answer the rules in `rust/src/seqio/mod.rs`
give: all accept with the same names and lengths, or all refuse with the same one line naming the
file (and the record) and a non-zero exit.

The expected answers come from `reference_answer`, a small pure-Python reading of the documented
rules, not from the Rust reader.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam
import pytest
from bam_fixtures import Read, write_bam
from click.testing import CliRunner

from vaebin import _core, features
from vaebin.cli import main
from vaebin.errors import VaebinError

ERROR_PREFIX = "vaebin-rs: error: "
READ_K = 8
"""The smallest abundance k of the read features, and so their smallest minimum read length."""


@dataclass(frozen=True)
class Answer:
    """What a command made of a file: its records, or the error line (prefix removed)."""

    records: list[tuple[str, int]] | None = None
    error: str | None = None
    records_and_bases_read: tuple[int, int] | None = None
    """Every record read, kept or not (the read path keeps reads of at least `READ_K` bp)."""


@dataclass(frozen=True)
class Expected:
    """The rules' answer: the records, or the record (1-based, None for the whole file) and
    words of the refusal."""

    records: list[tuple[str, int]] | None = None
    record: int | None = None
    problem: str = ""


def _is_sequence_letter(byte: int) -> bool:
    return chr(byte).isascii() and (chr(byte).isalpha() or chr(byte) in "-.*")


def reference_answer(content: bytes) -> Expected:
    """The documented rules, line by line in plain Python (FASTA only)."""
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except EOFError:
            return Expected(problem="truncated gzip")
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    records: list[tuple[str, int]] = []
    seen: set[str] = set()
    for line in lines:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        if line.startswith(b">"):
            if records and records[-1][1] == 0:
                return Expected(record=len(records), problem="record has no sequence")
            name = re.split(rb"[ \t]", line[1:], maxsplit=1)[0]
            number = len(records) + 1
            if not name:
                return Expected(record=number, problem="empty sequence name")
            if any(not 0x21 <= b <= 0x7E for b in name):
                return Expected(record=number, problem="non-printable or non-ASCII")
            if name.decode() in seen:
                return Expected(record=number, problem="duplicate sequence name")
            seen.add(name.decode())
            records.append((name.decode(), 0))
            continue
        if not records:
            return Expected(record=1, problem="not FASTA or FASTQ")
        for i, byte in enumerate(line):
            if not _is_sequence_letter(byte):
                position = records[-1][1] + i + 1
                return Expected(
                    record=len(records),
                    problem=f"invalid character {_shown(byte)} at sequence position {position}",
                )
        records[-1] = (records[-1][0], records[-1][1] + len(line))
    if records and records[-1][1] == 0:
        return Expected(record=len(records), problem="record has no sequence")
    if not records:
        return Expected(problem="contains no sequences")
    return Expected(records=records)


def _shown(byte: int) -> str:
    return f"'{chr(byte)}'" if 0x21 <= byte <= 0x7E else f"byte 0x{byte:02x}"


def lenient_contigs(content: bytes) -> list[tuple[str, int]]:
    """Contigs as a forgiving parser sees them (names to the first blank, every printable byte
    counted): what an aligner may have put in the BAM header. Unique names, lengths >= 1."""
    if content[:2] == b"\x1f\x8b":
        # What inflates before the cut, for a truncated file.
        content = zlib.decompressobj(wbits=31).decompress(content)
    contigs: dict[str, int] = {}
    name = None
    for line in content.split(b"\n"):
        if line.startswith(b">"):
            words = line[1:].split()
            name = words[0].decode("ascii", "replace") if words else "unnamed"
            contigs.setdefault(name, 0)
        elif name is not None:
            contigs[name] += sum(1 for b in line if b > 0x20)
    if not contigs:
        contigs["unnamed"] = 1
    return [(n, max(length, 1)) for n, length in contigs.items()]


def _fasta(records: list[tuple[str, str]], width: int = 60, eol: str = "\n") -> bytes:
    out = []
    for name, sequence in records:
        out.append(f">{name} description words{eol}")
        out.extend(sequence[i : i + width] + eol for i in range(0, len(sequence), width))
    return "".join(out).encode()


VALID = [("c1", "ACGT" * 30 + "A"), ("c2", "GGCATTACA" * 20), ("c3", "TTGACA" * 25)]
VALID_FASTA = _fasta(VALID)


def _bgzip(tmp_path: Path, content: bytes) -> bytes:
    plain = tmp_path / "to-bgzip.fa"
    plain.write_bytes(content)
    pysam.tabix_compress(str(plain), str(plain) + ".gz", force=True)
    return Path(str(plain) + ".gz").read_bytes()


def _truncated_gzip(_: Path) -> bytes:
    many = _fasta([(f"r{i}", "ACGTTGCAAC" * 30) for i in range(3000)])
    compressed = gzip.compress(many, compresslevel=6)
    return compressed[: len(compressed) // 2]


# name -> file content (or a function of a scratch folder giving it).
CASES: dict[str, bytes | Callable[[Path], bytes]] = {
    # Odd but valid.
    "valid": VALID_FASTA,
    "crlf": _fasta(VALID, eol="\r\n"),
    "lower_case": _fasta([(n, s.lower()) for n, s in VALID]),
    "n_runs_and_iupac": _fasta([("c1", "ACGT" * 10 + "N" * 50 + "RYKMSWBDHV"), ("c2", "nnnnACGT")]),
    "gap_symbols": _fasta([("c1", "ACGT-ACGT.ACGT*")]),
    "blank_line_between_records": b">c1\nACGTACGT\nAC\n\n>c2 x\nGGG\n\r\n>c3\nT\n",
    "blank_lines_inside_and_before": b"\n\r\n>c1\nACGT\n\nACGT\n>c2\nGG\n",
    "no_final_newline": b">c1\nACGTACGT\n>c2\nGGCC",
    "one_letter_lines": _fasta(VALID, width=1),
    "unwrapped": _fasta(VALID, width=10_000),
    "tab_in_description": b">c1\tsome\tdescription\nACGTACGT\n>c2 \t x\nCC\n",
    "gzip": gzip.compress(VALID_FASTA),
    "bgzip": lambda folder: _bgzip(folder, VALID_FASTA),
    # Malformed: refused by every command.
    "trailing_space": b">c1\nACGT \nACGT\n>c2\nGG\n",
    "tab_in_sequence": b">c1\nACGTAC\n>c2\nGG\tCC\n",
    "digits_in_sequence": b">c1\nACGT\n>c2\nACGT12ACGT\n",
    "line_of_spaces": b">c1\nACGT\n    \nACGT\n>c2\nGG\n",
    "header_mark_inside_line": b">c1\nACGT>c2\nACGT\n",
    "empty_record": b">c1\nACGT\n>c2\n>c3\nGGCC\n",
    "empty_record_with_blank_lines": b">c1\n\n\n>c2\nGGCC\n",
    "header_only": b">c1 lonely header\n",
    "header_only_at_end": b">c1\nACGT\n>c2",
    "duplicate_names": b">c1\nACGT\n>c2\nGG\n>c1 again\nTT\n",
    "empty_file": b"",
    "only_blank_lines": b"\n\r\n\n",
    "text_before_first_header": b"ACGT\n>c1\nACGT\n",
    "spaces_before_first_header": b"  \n>c1\nACGT\n",
    "empty_name": b">c1\nACGT\n> description only\nGG\n",
    "non_ascii_name": ">c1\nACGT\n>c\u00e92\nGG\n".encode(),
    "nul_byte": b">c1\nAC\x00GT\n",
    "stray_carriage_return": b">c1\nAC\rGT\n",
    "crlf_with_trailing_space": b">c1\r\nACGT \r\n",
    "truncated_gzip": _truncated_gzip,
}


def _content(case: str, folder: Path) -> bytes:
    made = CASES[case]
    return made(folder) if callable(made) else made


def _one_line_error(exit_code: int, stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert exit_code != 0
    assert len(lines) == 1, stderr
    assert lines[0].startswith(ERROR_PREFIX), stderr
    message = lines[0][len(ERROR_PREFIX) :]
    assert not message.startswith("internal error"), message
    return message


def _invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    # The CLI turns every failure into one line; an escaping exception would be a traceback.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


def featurize_answer(fasta: Path, outdir: Path) -> Answer:
    code, stderr = _invoke("featurize", "--contigs", fasta, "--outdir", outdir, "-q")
    if code != 0:
        return Answer(error=_one_line_error(code, stderr))
    rows = (outdir / "contigs.tsv").read_text().splitlines()[1:]
    return Answer(records=[(n, int(length)) for n, length in (r.split("\t") for r in rows)])


def coverage_answer(fasta: Path, bam: Path, table: Path) -> Answer:
    code, stderr = _invoke("coverage", "--contigs", fasta, "--bam", bam, "--out", table, "-q")
    if code != 0:
        return Answer(error=_one_line_error(code, stderr))
    rows = table.read_text().splitlines()[1:]
    return Answer(records=[(r.split("\t")[0], int(r.split("\t")[1])) for r in rows])


def read_path_answer(fasta: Path, outdir: Path) -> Answer:
    """The long-read features in the library, and `bin-reads` for the exit and the line."""
    try:
        result = _core.read_feature_arrays([fasta], k=READ_K, min_length=READ_K, threads=2)
    except VaebinError as error:
        code, stderr = _invoke("bin-reads", "--reads", fasta, "--outdir", outdir, "-q")
        line = _one_line_error(code, stderr)
        assert line == str(error)
        assert not (outdir / "read_clusters.tsv").exists()
        return Answer(error=line)
    width = result["name_width"]
    names = np.frombuffer(result["names"], dtype=f"S{width}").astype(str).tolist()
    stats = result["stats"][0]
    return Answer(
        records=list(zip(names, result["lengths"].tolist(), strict=True)),
        records_and_bases_read=(stats["records"], stats["bases"]),
    )


def names_and_lengths_answer(fasta: Path) -> Answer:
    """The library's reader function, which the CLI uses for names and lengths."""
    try:
        names, lengths = features.names_and_lengths(fasta)
    except VaebinError as error:
        return Answer(error=str(error))
    return Answer(records=list(zip(names.tolist(), lengths.tolist(), strict=True)))


def test_the_cases_cover_the_issue(tmp_path: Path) -> None:
    # 14 kinds in the issue, the brief's additions, and more; at least 20 in all.
    assert len(CASES) >= 20
    refused = [case for case in CASES if reference_answer(_content(case, tmp_path)).records is None]
    assert len(refused) >= 14


@pytest.mark.parametrize("case", list(CASES))
def test_every_command_reads_a_file_alike(case: str, tmp_path: Path) -> None:
    content = _content(case, tmp_path)
    fasta = tmp_path / ("contigs.fa.gz" if content[:2] == b"\x1f\x8b" else "contigs.fa")
    fasta.write_bytes(content)
    contigs = lenient_contigs(content)
    expected = reference_answer(content)
    if expected.records is not None:
        # The BAM lists exactly the records the rules read.
        contigs = expected.records
    bam = write_bam(tmp_path / "sample.bam", contigs, [Read(contigs[0][0], 0, "1M")])

    answers = {
        "featurize": featurize_answer(fasta, tmp_path / "featurized"),
        "coverage": coverage_answer(fasta, bam, tmp_path / "depth.tsv"),
        "reads": read_path_answer(fasta, tmp_path / "read-bins"),
        "names_and_lengths": names_and_lengths_answer(fasta),
    }

    if expected.records is not None:
        for command, answer in answers.items():
            assert answer.error is None, f"{command}: {answer.error}"
        assert answers["featurize"].records == expected.records
        assert answers["coverage"].records == expected.records
        assert answers["names_and_lengths"].records == expected.records
        long_enough = [(name, length) for name, length in expected.records if length >= READ_K]
        assert answers["reads"].records == long_enough
        total = (len(expected.records), sum(length for _, length in expected.records))
        assert answers["reads"].records_and_bases_read == total
        return
    errors = {command: answer.error for command, answer in answers.items()}
    assert None not in errors.values(), errors
    # The same line from every command: the file, the record, the problem.
    assert len(set(errors.values())) == 1, errors
    line = errors["featurize"]
    assert line is not None
    assert line.startswith(f"{fasta}: "), line
    if expected.record is not None:
        assert line.startswith(f"{fasta}: record {expected.record}: "), line
    assert expected.problem in line, line
