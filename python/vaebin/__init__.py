"""vaebin-rs: metagenomic binning with a variational autoencoder over Rust-computed features."""

import os
from importlib.metadata import PackageNotFoundError, version

# OpenMP threads that spin while waiting starve each other whenever the cores are shared (a busy
# node, Nextflow running tasks side by side): a training step of the default model took 190 ms
# with 2 spinning threads on a loaded 2-core machine and 14 ms with passive waiting. It must be
# set before torch loads its OpenMP runtime; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vaebin._core import __version__ as core_version

try:
    __version__ = version("vaebin-rs")
except PackageNotFoundError:  # running from a source tree without an installed distribution
    __version__ = core_version

__all__ = ["__version__", "core_version"]
