"""CAMI binning files (bioboxes 0.9.1): the truth of a community and one format of bins.

    @Version:0.9.1
    @SampleID:<id>

    @@SEQUENCEID<TAB>BINID[<TAB>_LENGTH]
    <sequence><TAB><bin>[<TAB><length>]

Columns are found by name in the ``@@`` header, as AMBER does; ``_LENGTH`` is AMBER's optional
column of sequence lengths, which lets scores be computed in bases without the sequences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaebin.errors import FormatError, InputFileError
from vaebin.io import atomic_path

CAMI_VERSION = "0.9.1"


@dataclass(frozen=True)
class CamiBinning:
    """A CAMI binning file's rows: sequence -> bin, and sequence -> length when given."""

    assignments: dict[str, str]
    lengths: dict[str, int] | None
    """None when the file has no ``_LENGTH`` column."""


def write_cami_binning(
    path: Path,
    contig_names: Sequence[str],
    bin_ids: Sequence[str],
    contig_lengths: Sequence[int] | np.ndarray | None = None,
    sample_id: str = "vaebin",
) -> Path:
    """Write a CAMI binning file (atomically); lengths go in AMBER's ``_LENGTH`` column."""
    if len(contig_names) != len(bin_ids):
        raise ValueError("contig_names and bin_ids differ in length")
    if contig_lengths is not None and len(contig_lengths) != len(contig_names):
        raise ValueError("contig_lengths and contig_names differ in length")
    lines = [f"@Version:{CAMI_VERSION}\n@SampleID:{sample_id}\n\n"]
    if contig_lengths is None:
        lines.append("@@SEQUENCEID\tBINID\n")
        lines.extend(f"{c}\t{b}\n" for c, b in zip(contig_names, bin_ids, strict=True))
    else:
        lines.append("@@SEQUENCEID\tBINID\t_LENGTH\n")
        lengths = np.asarray(contig_lengths).tolist()
        lines.extend(
            f"{c}\t{b}\t{n}\n" for c, b, n in zip(contig_names, bin_ids, lengths, strict=True)
        )
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(lines))
    return path


def read_cami(path: Path) -> CamiBinning:
    """Read a CAMI binning file, finding its columns from the ``@@`` header."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputFileError(f"{path}: cannot read CAMI binning file: {error}") from None
    assignments: dict[str, str] = {}
    lengths: dict[str, int] = {}
    sequence_column, bin_column, length_column = 0, 1, None
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        if line.startswith("@@"):
            header = [h.strip().upper() for h in line[2:].split("\t")]
            if "SEQUENCEID" not in header or "BINID" not in header:
                raise FormatError(f"{path}: line {line_number}: header lacks SEQUENCEID/BINID")
            sequence_column, bin_column = header.index("SEQUENCEID"), header.index("BINID")
            length_column = header.index("_LENGTH") if "_LENGTH" in header else None
            continue
        if line.startswith("@"):
            continue
        columns = line.split("\t")
        needed = max(sequence_column, bin_column, -1 if length_column is None else length_column)
        if len(columns) <= needed:
            raise FormatError(f"{path}: line {line_number}: expected tab-separated columns")
        name = columns[sequence_column]
        assignments[name] = columns[bin_column]
        if length_column is not None:
            try:
                lengths[name] = int(columns[length_column])
            except ValueError:
                raise FormatError(
                    f"{path}: line {line_number}: _LENGTH {columns[length_column]!r} is not a "
                    "whole number"
                ) from None
    return CamiBinning(assignments, lengths if length_column is not None else None)


def read_cami_binning(path: Path) -> dict[str, str]:
    """{sequence id: bin id} of a CAMI binning file."""
    return read_cami(path).assignments


def read_truth_lengths(path: Path) -> dict[str, int]:
    """Sequence lengths from the ``_LENGTH`` column of a CAMI binning file ({} when it has none)."""
    return read_cami(path).lengths or {}
