"""Atheris (libFuzzer for Python) target: the MetaBAT2 depth-table parser.

    .venv/bin/python fuzz/depth_table.py [libFuzzer options] CORPUS [SEEDS]

`vaebin.io.depth_table.read_depth_table` reads the file as UTF-8 with universal newlines and
hands the text to `parse_depth_table`; the target does the same with the fuzz input, in memory. The
property: any input either gives a table whose arrays agree with each other, or raises one of the
`VaebinError` family (what the CLI reports as one line); any other exception is a crash.
Python, not Rust, because the parser is Python: moving it into the extension would fuzz a
different parser than the one users run (see RESULTS.md for what this costs in speed).
"""

from __future__ import annotations

import io
import sys

import atheris
import numpy as np

with atheris.instrument_imports():
    from vaebin.errors import VaebinError
    from vaebin.io import depth_table


def test_one_input(data: bytes) -> None:
    try:
        # What `open(path, encoding="utf-8").read()` gives: universal newlines.
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()
    except UnicodeDecodeError:
        return  # read_depth_table reports this as a FormatError before parsing
    try:
        table = depth_table.parse_depth_table(text, "fuzz.tsv")
    except VaebinError:
        return
    rows, samples = table.n_contigs, len(table.sample_names)
    assert rows > 0 and samples > 0
    assert table.lengths.shape == (rows,) and table.total_average_depth.shape == (rows,)
    assert table.depths.shape == (rows, samples)
    assert table.variances is None or table.variances.shape == (rows, samples)
    assert np.unique(table.names).size == rows
    assert np.isfinite(table.depths).all() and (table.depths >= 0).all()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
