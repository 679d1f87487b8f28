"""The vaebin-rs exception family; the Rust core raises the same classes."""

from vaebin._core import (
    FormatError,
    InputDataError,
    InputFileError,
    ParameterError,
    VaebinError,
)

__all__ = ["FormatError", "InputDataError", "InputFileError", "ParameterError", "VaebinError"]
