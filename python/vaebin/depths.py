"""Depth tables from coverage, and per-sample tables merged into one (MetaBAT2's rules).

The table format itself is read and written by :mod:`vaebin.io.depth_table`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vaebin import _core
from vaebin.errors import InputDataError
from vaebin.features import Coverage, CoverageOptions
from vaebin.io.depth_table import DepthTable, read_depth_table, write_depth_table


def table_from_coverage(coverage: Coverage) -> DepthTable:
    """The depth table of a coverage result (what `jgi_summarize_bam_contig_depths` writes)."""
    return DepthTable(
        names=coverage.names,
        lengths=coverage.lengths,
        total_average_depth=coverage.total_average_depth.astype(np.float64),
        depths=coverage.depths,
        variances=coverage.variances,
        sample_names=list(coverage.sample_names),
    )


def merge_depth_tables(
    tables: Sequence[DepthTable],
    sources: Sequence[str] | None = None,
    trim_edges: int = CoverageOptions.trim_edges,
) -> DepthTable:
    """Join per-sample tables of the same contigs (same order, same lengths) column-wise.

    `totalAvgDepth` is recomputed as MetaBAT2 does for several BAM files, assuming each sample
    trimmed `trim_edges` bases at each contig end (true when its reads averaged at least that).
    """
    if not tables:
        raise InputDataError("no depth table to merge")
    labels = [f"table {i + 1}" for i in range(len(tables))] if sources is None else list(sources)
    if len(labels) != len(tables):
        raise ValueError("one source label per table")
    first = tables[0]
    for table, label in zip(tables[1:], labels[1:], strict=True):
        _check_same_contigs(first, labels[0], table, label)
    with_variance = [table.variances is not None for table in tables]
    if any(with_variance) and not all(with_variance):
        missing = labels[with_variance.index(False)]
        raise InputDataError(f"{missing}: has no '-var' columns while other tables have them")
    depths = np.hstack([table.depths for table in tables])
    variances = np.hstack([table.variances for table in tables]) if all(with_variance) else None
    samples = [name for table in tables for name in table.sample_names]
    totals = _core.total_average_depths(
        first.lengths.astype(np.float64),
        np.ascontiguousarray(depths, dtype=np.float64),
        [int(trim_edges)] * len(samples),
    )
    return DepthTable(
        names=first.names,
        lengths=first.lengths,
        total_average_depth=totals.astype(np.float64),
        depths=depths,
        variances=variances,
        sample_names=samples,
    )


def _check_same_contigs(first: DepthTable, first_label: str, other: DepthTable, label: str) -> None:
    if other.n_contigs != first.n_contigs:
        raise InputDataError(
            f"{label}: {other.n_contigs} contigs, but {first_label} has {first.n_contigs}"
        )
    differ = (other.names != first.names) | (other.lengths != first.lengths)
    if differ.any():
        rows = np.flatnonzero(differ)
        row = int(rows[0])
        raise InputDataError(
            f"{label}: contigs differ from {first_label} in {rows.size} rows (first: row "
            f"{row + 1} is '{other.names[row]}' of {other.lengths[row]} bp there, "
            f"'{first.names[row]}' of {first.lengths[row]} bp in {first_label})"
        )


def merge_depth_files(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    trim_edges: int = CoverageOptions.trim_edges,
) -> DepthTable:
    """Read, merge and write depth tables; returns the merged table."""
    tables = [read_depth_table(path) for path in paths]
    merged = merge_depth_tables(tables, [str(Path(path)) for path in paths], trim_edges)
    write_depth_table(out, merged)
    return merged
