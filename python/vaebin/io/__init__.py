"""File formats and atomic output: the one home of every table vaebin-rs reads or writes.

- this module: writes that appear only when complete (temporary name, then rename), .npy arrays
  and the contig table;
- :mod:`vaebin.io.cami`: CAMI (bioboxes) binning files, the truth and bin format of benchmarks;
- :mod:`vaebin.io.clusters`: VAMB-style ``clustername<TAB>name`` tables;
- :mod:`vaebin.io.depth_table`: MetaBAT2 depth tables.

Sequence files (FASTA/FASTQ) have their one reader in the Rust core (``rust/src/seqio``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # /dev/stdout, a FIFO, a device or a link: write through it; a rename would replace it.
        yield target
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(handle)
    try:
        yield Path(temporary)
        # mkstemp makes files private (0600); give them the modes the user's umask asks for.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_text(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """Open a text file for writing that appears at `path` only when fully written."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        yield handle


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a .npy file atomically."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.save(handle, array)


def write_contig_table(
    path: str | os.PathLike[str], names: np.ndarray, lengths: np.ndarray
) -> None:
    """Write `name<TAB>length` rows (with a header) in matrix row order."""
    with atomic_text(path) as handle:
        handle.write("name\tlength\n")
        rows = np.char.add(np.char.add(names.astype(str), "\t"), lengths.astype(str))
        handle.write("\n".join(rows.tolist()))
        if len(rows):
            handle.write("\n")
