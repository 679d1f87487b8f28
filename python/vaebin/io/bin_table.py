"""``bins.tsv``: one row per bin written by `bin`, with its marker-gene quality estimate.

Columns: ``bin``, ``contigs``, ``bp``, ``marker_completeness`` and ``marker_contamination``
(percent of the marker set's genes, two decimals), ``marker_genes`` (distinct genes found) and
``marker_extra_copies``. The marker columns hold ``NA`` when the marker step did not run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from vaebin.errors import InputDataError, InputFileError
from vaebin.io import atomic_text

COLUMNS = (
    "bin",
    "contigs",
    "bp",
    "marker_completeness",
    "marker_contamination",
    "marker_genes",
    "marker_extra_copies",
)
MARKER_COLUMNS = COLUMNS[3:]


def write_bin_table(path: str | os.PathLike[str], bins: Sequence[dict[str, object]]) -> None:
    """Write one row per bin (dicts with the COLUMNS' keys; a missing marker key is NA)."""
    with atomic_text(path) as handle:
        handle.write("\t".join(COLUMNS) + "\n")
        for row in bins:
            values = [row["name"], row["contigs"], row["bp"]]
            values += [row.get(column, "NA") for column in MARKER_COLUMNS]
            handle.write("\t".join(str(value) for value in values) + "\n")


def read_bin_table(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of a table written by `write_bin_table`, as {column: text}."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror or error}") from None
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise InputDataError(f"{path}: not a bins.tsv table (header {'<TAB>'.join(COLUMNS)})")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        values = line.split("\t")
        if len(values) != len(COLUMNS):
            raise InputDataError(f"{path}: line {number}: {len(values)} columns, not 7")
        rows.append(dict(zip(COLUMNS, values, strict=True)))
    return rows
