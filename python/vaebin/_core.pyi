"""Hand-written type stubs for the Rust extension `vaebin._core` (see rust/src/lib.rs)."""

import os
from typing import TypedDict

import numpy as np
import numpy.typing as npt

__version__: str

class VaebinError(Exception): ...
class InputFileError(VaebinError): ...
class FormatError(VaebinError): ...
class InputDataError(VaebinError): ...
class ParameterError(VaebinError): ...

class CompositionArrays(TypedDict):
    matrix: npt.NDArray[np.float32] | npt.NDArray[np.uint32]
    lengths: npt.NDArray[np.int64]
    kmer_totals: npt.NDArray[np.int64]
    names: bytes
    name_width: int
    records: int
    records_kept: int
    records_too_short: int
    bases: int
    bases_kept: int
    compressed: bool

def composition_arrays(
    path: str | os.PathLike[str],
    k: int = 4,
    min_length: int = 0,
    threads: int | None = None,
    normalize: bool = True,
) -> CompositionArrays: ...
def kmer_labels(k: int) -> list[str]: ...
def write_bins(
    contigs: str | os.PathLike[str],
    names: bytes,
    name_width: int,
    outputs_of_names: list[int],
    outputs: list[str | os.PathLike[str]],
) -> list[int]: ...
