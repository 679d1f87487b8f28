"""The project's one version: `[package] version` in Cargo.toml.

maturin gives it to the Python package (pyproject.toml lists `version` as dynamic), the Rust core
reads it as `CARGO_PKG_VERSION`; tests/test_version.py checks every other mention against it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def source_version() -> str:
    """The version as Cargo.toml gives it (SemVer, e.g. `0.2.0` or `0.2.0-rc.1`)."""
    # A regular expression, not tomllib: the tests also run on Python 3.10.
    text = (ROOT / "Cargo.toml").read_text()
    package = re.search(r"^\[package\]\n(.*?)(?=^\[|\Z)", text, flags=re.M | re.S)
    version = package and re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), flags=re.M)
    if not version:
        raise ValueError("Cargo.toml: no version in [package]")
    return version.group(1)


def python_version() -> str:
    """The version of the Python package, as maturin writes it (PEP 440: `0.2.0rc1`)."""
    version = source_version()
    release, _, pre = version.partition("-")
    if not pre:
        return release
    match = re.fullmatch(r"(alpha|beta|rc)\.?(\d+)", pre)
    if match is None:
        raise ValueError(f"Cargo.toml: version {version!r} has no PEP 440 form that maturin gives")
    return release + {"alpha": "a", "beta": "b", "rc": "rc"}[match.group(1)] + match.group(2)
