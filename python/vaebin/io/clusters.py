"""Cluster tables in VAMB's shape: a ``clustername<TAB><name>`` header, one row per member.

`bin` writes ``clusters.tsv`` (``contigname``) and `bin-reads` ``read_clusters.tsv``
(``readname``); rows are grouped by cluster, in cluster order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from vaebin.errors import InputDataError, InputFileError
from vaebin.io import atomic_text


def write_clusters(
    path: str | os.PathLike[str],
    cluster_names: Iterable[str],
    member_names: Iterable[str],
    member_column: str = "contigname",
) -> None:
    """Write the table (atomically): one ``cluster<TAB>member`` row per member, in order."""
    with atomic_text(path) as handle:
        handle.write(f"clustername\t{member_column}\n")
        handle.writelines(
            f"{cluster}\t{member}\n"
            for cluster, member in zip(cluster_names, member_names, strict=True)
        )


def read_clusters(path: Path) -> dict[str, str]:
    """Read a cluster table into {member name: cluster name}."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise InputDataError(f"{path}: not a text file") from None
    assignments: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line or (number == 1 and line.startswith("clustername")):
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            raise InputDataError(f"{path}: line {number}: expected clustername<TAB>contigname")
        assignments[columns[1]] = columns[0]
    return assignments
