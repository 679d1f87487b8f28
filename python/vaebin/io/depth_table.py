"""MetaBAT2 depth tables: `contigName contigLen totalAvgDepth <s> <s>-var ...`, read and written.

The tables written here are byte-compatible with `jgi_summarize_bam_contig_depths` (same columns,
same `%g` number formatting), and a table written by MetaBAT2 itself, with or without the `-var`
columns, is read wherever vaebin-rs takes depths. Merging and alignment live in
:mod:`vaebin.depths`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaebin import _core
from vaebin.errors import FormatError, InputDataError, InputFileError
from vaebin.io import atomic_text

FIXED_COLUMNS = ("contigName", "contigLen", "totalAvgDepth")
VARIANCE_SUFFIX = "-var"


@dataclass(frozen=True)
class DepthTable:
    """A depth table's columns; rows in file order."""

    names: np.ndarray
    """Contig names (numpy unicode array)."""
    lengths: np.ndarray
    """int64 contig lengths as written: MetaBAT2 prints lengths of 1 Mbp or more with 6
    significant digits, so compare them with `lengths_match`."""
    total_average_depth: np.ndarray
    """float64 `totalAvgDepth` column."""
    depths: np.ndarray
    """float64 contigs x samples mean depth."""
    variances: np.ndarray | None
    """float64 contigs x samples variance, or None for a table without `-var` columns."""
    sample_names: list[str]

    @property
    def n_contigs(self) -> int:
        """Number of rows."""
        return int(self.names.shape[0])


def lengths_match(table_lengths: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Elementwise: does a length read from a depth table stand for the true `lengths`?

    It does when it is the length itself (vaebin-rs's own tables and coverage, which write
    lengths in full) or the length as MetaBAT2 prints it, like printf's `%g`: exact below 1 Mbp,
    rounded half to even to 6 significant digits above.
    """
    table_lengths = np.asarray(table_lengths, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    digits = np.floor(np.log10(np.maximum(lengths, 1))).astype(np.int64) + 1
    step = 10 ** np.maximum(digits - 6, 0)
    quotient, remainder = np.divmod(lengths, step)
    round_up = (2 * remainder > step) | ((2 * remainder == step) & (quotient % 2 == 1))
    printed = (quotient + round_up) * step
    return (table_lengths == lengths) | (table_lengths == printed)


def _sample_columns(header: list[str], path: str) -> tuple[list[str], bool]:
    """Sample names from the columns after the fixed ones, and whether each has a -var column."""
    columns = header[len(FIXED_COLUMNS) :]
    samples: list[str] = []
    with_variance: list[bool] = []
    i = 0
    while i < len(columns):
        name = columns[i]
        paired = i + 1 < len(columns) and columns[i + 1] == name + VARIANCE_SUFFIX
        samples.append(name)
        with_variance.append(paired)
        i += 2 if paired else 1
    if not samples:
        raise FormatError(f"{path}: depth table has no sample column")
    if any(with_variance) and not all(with_variance):
        raise FormatError(f"{path}: some samples have a '-var' column and others not")
    return samples, all(with_variance)


def read_depth_table(path: str | os.PathLike[str]) -> DepthTable:
    """Read a MetaBAT2 depth table (tab separated, with header)."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise InputFileError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{source}: is a directory, not a depth table") from None
    except UnicodeDecodeError:
        raise FormatError(f"{source}: not a text depth table (not UTF-8)") from None
    except OSError as error:
        raise InputFileError(f"{source}: {error.strerror or error}") from None
    return parse_depth_table(text, source)


def parse_depth_table(text: str, source: str) -> DepthTable:
    """Parse the text of a depth table (as read with universal newlines); `source` names it."""
    header_line, _, body = text.partition("\n")
    header = header_line.rstrip("\r").split("\t")
    if tuple(header[: len(FIXED_COLUMNS)]) != FIXED_COLUMNS:
        raise FormatError(
            f"{source}: not a MetaBAT2 depth table (the header must start with "
            f"{', '.join(FIXED_COLUMNS)})"
        )
    samples, with_variance = _sample_columns(header, source)
    width = len(header)
    # Contig names hold no whitespace (SAM forbids it), so the body splits into a flat token list
    # that numpy reshapes and converts without a Python loop over rows.
    lines = [line for line in body.split("\n") if line.strip()]
    tokens = body.split()
    if not lines:
        raise InputDataError(f"{source}: depth table has no contig row")
    if len(tokens) != len(lines) * width:
        raise FormatError(f"{source}: line {_first_bad_line(body, width)}: expected {width} fields")
    grid = np.array(tokens, dtype=object).reshape(len(lines), width)
    try:
        numbers = grid[:, 1:].astype(np.float64)
    except ValueError:
        line = _first_bad_number(body)
        raise FormatError(f"{source}: line {line}: a value is not a number") from None
    if not np.isfinite(numbers).all() or (numbers < 0).any():
        raise FormatError(f"{source}: depth values must be finite and non-negative")
    names = grid[:, 0].astype(str)
    if np.unique(names).size != names.size:
        values, counts = np.unique(names, return_counts=True)
        raise FormatError(f"{source}: contig '{values[counts > 1][0]}' has more than one row")
    sample_values = numbers[:, 2:]
    if with_variance:
        depths, variances = sample_values[:, 0::2], sample_values[:, 1::2]
    else:
        depths, variances = sample_values, None
    return DepthTable(
        names=names,
        lengths=np.rint(numbers[:, 0]).astype(np.int64),
        total_average_depth=numbers[:, 1],
        depths=np.ascontiguousarray(depths),
        variances=None if variances is None else np.ascontiguousarray(variances),
        sample_names=samples,
    )


def _first_bad_line(body: str, width: int) -> int:
    """1-based line number (header = line 1) of the first row without `width` fields."""
    for number, line in enumerate(body.split("\n"), start=2):
        if line.strip() and len(line.split()) != width:
            return number
    return 1


def _first_bad_number(body: str) -> int:
    for number, line in enumerate(body.split("\n"), start=2):
        try:
            [float(value) for value in line.split()[1:]]
        except ValueError:
            return number
    return 1


def write_depth_table(path: str | os.PathLike[str], table: DepthTable) -> None:
    """Write `table` in MetaBAT2's format (atomically)."""
    header = list(FIXED_COLUMNS)
    columns = [table.lengths.astype(np.float64), table.total_average_depth]
    for i, sample in enumerate(table.sample_names):
        header.append(sample)
        columns.append(table.depths[:, i])
        if table.variances is not None:
            header.append(sample + VARIANCE_SUFFIX)
            columns.append(table.variances[:, i])
    values = np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)
    body = _core.depth_table_rows(table.names.astype(str).tolist(), values)
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # /dev/stdout, a FIFO or a link: renaming a temporary file onto it would replace the
        # link or device itself, so write through it.
        with open(target, "w", encoding="utf-8") as handle:
            handle.write("\t".join(header) + "\n")
            handle.write(body)
        return
    with atomic_text(path) as handle:
        handle.write("\t".join(header) + "\n")
        handle.write(body)
