"""File formats and atomic output: the one home of every table vaebin-rs reads or writes.

- this module: writes that appear only when complete (temporary name, then rename), .npy arrays
  and the contig table. A killed run never leaves a file under its final name that is not
  whole, only hidden `.<name>.*.tmp` / `.<name>.partial` temporaries, which a rerun ignores;
- :mod:`vaebin.io.cami`: CAMI (bioboxes) binning files, the truth and bin format of benchmarks;
- :mod:`vaebin.io.clusters`: VAMB-style ``clustername<TAB>name`` tables;
- :mod:`vaebin.io.depth_table`: MetaBAT2 depth tables.

Sequence files (FASTA/FASTQ) have their one reader in the Rust core (``rust/src/seqio``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from vaebin.errors import FormatError

KILL_ENV = "VAEBIN_TEST_KILL_AT"
# Every file `featurize` can write: a run removes them all before writing its own.
FEATURIZE_OUTPUTS = (
    "composition.npy",
    "composition_vamb103.npy",
    "contigs.tsv",
    "depths.npy",
    "samples.txt",
)


def kill_point(name: str) -> None:
    """Test hook: SIGKILL this process here when VAEBIN_TEST_KILL_AT names this point.

    Points: `rename:<file name>` (an output fully written under its temporary name, not yet
    renamed) and `step:<name>` (a `bin` step about to start). Only tests/test_kill_safety.py
    sets the variable.
    """
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def remove_outputs(directory: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Delete earlier outputs of a run about to rewrite them, so that a killed rerun cannot leave
    files of two runs side by side that look like one complete set."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(Path(directory) / name)


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
        kill_point(f"rename:{target.name}")
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


def load_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a .npy array; a damaged or foreign file is a FormatError naming it, not a crash."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as error:
        raise FormatError(f"{path}: not a readable .npy array ({error})") from None


def read_contig_table(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Names and lengths from a table written by `write_contig_table`."""
    try:
        table = np.loadtxt(
            path, dtype=str, delimiter="\t", skiprows=1, ndmin=2, comments=None, encoding="utf-8"
        )
        if table.size and table.shape[1] != 2:
            raise ValueError(f"{table.shape[1]} columns instead of 2")
        table = table.reshape(-1, 2)
        return table[:, 0], table[:, 1].astype(np.int64)
    except (ValueError, UnicodeDecodeError) as error:
        raise FormatError(f"{path}: not a name<TAB>length table ({error})") from None
