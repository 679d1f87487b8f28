"""vaebin-rs: metagenomic binning with a variational autoencoder over Rust-computed features."""

from importlib.metadata import PackageNotFoundError, version

from vaebin._core import __version__ as core_version

try:
    __version__ = version("vaebin-rs")
except PackageNotFoundError:  # running from a source tree without an installed distribution
    __version__ = core_version

__all__ = ["__version__", "core_version"]
