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

class SequenceNamesAndLengths(TypedDict):
    names: bytes
    name_width: int
    lengths: npt.NDArray[np.int64]

def sequence_names_and_lengths(path: str | os.PathLike[str]) -> SequenceNamesAndLengths: ...
def selected_sequences(path: str | os.PathLike[str], names: list[str]) -> list[bytes]: ...
def write_bins(
    contigs: str | os.PathLike[str],
    names: bytes,
    name_width: int,
    outputs_of_names: list[int],
    outputs: list[str | os.PathLike[str]],
) -> list[int]: ...

class CoverageArrays(TypedDict):
    names: list[str]
    lengths: npt.NDArray[np.uint64]
    means: npt.NDArray[np.float64]
    variances: npt.NDArray[np.float64]
    edge_trims: npt.NDArray[np.uint32]
    stats: list[dict[str, int]]

def coverage_arrays(
    contigs: str | os.PathLike[str],
    bams: list[str | os.PathLike[str]],
    mode: str = "metabat",
    min_identity: float = 0.97,
    trim_edges: int = 75,
    min_mapq: int = 0,
    threads: int | None = None,
) -> CoverageArrays: ...
def total_average_depths(
    lengths: npt.NDArray[np.float64], means: npt.NDArray[np.float64], edge_trims: list[int]
) -> npt.NDArray[np.float32]: ...
def depth_table_rows(names: list[str], values: npt.NDArray[np.float64]) -> str: ...

class ReadSampleStats(TypedDict):
    records: int
    records_kept: int
    records_too_short: int
    bases: int
    bases_kept: int
    compressed: bool
    fastq: bool
    kmers_counted: int
    distinct_kmers: int
    seconds_reading: float
    seconds_counting: float

class _ReadFeatureArraysAlways(TypedDict):
    composition: npt.NDArray[np.float32]
    histograms: npt.NDArray[np.float32]
    abundance: npt.NDArray[np.float32]
    solid_fraction: npt.NDArray[np.float32]
    kmers: npt.NDArray[np.uint32]
    lengths: npt.NDArray[np.int64]
    samples: npt.NDArray[np.uint32]
    record_numbers: npt.NDArray[np.uint64]
    names: bytes
    name_width: int
    table_bytes: int
    seconds_profiles: float
    stats: list[ReadSampleStats]

class ReadFeatureArrays(_ReadFeatureArraysAlways, total=False):
    # Only with graph=True: the read overlap graph in compressed rows (rust/src/overlaps.rs).
    graph_offsets: npt.NDArray[np.uint64]
    graph_neighbours: npt.NDArray[np.uint32]
    graph_shared: npt.NDArray[np.uint32]
    seconds_graph: float

def read_feature_arrays(
    paths: list[str | os.PathLike[str]],
    k: int = 15,
    composition_k: int = 4,
    bins: int = 32,
    bin_width: int = 2,
    sampling: int = 8,
    min_length: int = 1000,
    solid_histograms: bool = True,
    graph: bool = False,
    graph_sampling: int = 4,
    min_shared: int = 3,
    max_group: int = 64,
    max_neighbours: int = 16,
    threads: int | None = None,
) -> ReadFeatureArrays: ...
def write_read_bins(
    inputs: list[str | os.PathLike[str]],
    outputs_of_records: list[npt.NDArray[np.uint32]],
    outputs: list[str | os.PathLike[str]],
    fastq: bool,
) -> list[int]: ...

class MarkerSeeds:
    """The seed prefilter of the marker search (rust/src/seeds.rs)."""

    def __init__(
        self,
        profiles: list[npt.NDArray[np.float32]],
        k: int,
        threshold: float,
        x_drop: float,
        window: int,
        threads: int | None = None,
    ) -> None: ...
    @property
    def seeds(self) -> list[int]: ...
    @property
    def table_bytes(self) -> int: ...
    def candidates(
        self, proteins: list[bytes], min_score: float, threads: int | None = None
    ) -> list[npt.NDArray[np.uint32]]: ...
    def best_scores(
        self, proteins: list[bytes], threads: int | None = None
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...

# Private, for the tests only: panics with `message`, which reaches Python as PyO3's
# PanicException (a BaseException, not an Exception).
def _panic_for_tests(message: str) -> None: ...
