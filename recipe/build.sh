#!/usr/bin/env bash
# Bioconda build script: the Rust extension and the Python package from the sdist, with maturin
# as the PEP 517 backend (pip finds it in the host environment: no build isolation).
set -euxo pipefail

# The licenses of the Rust crates compiled into the extension (bioconda ships them).
cargo-bundle-licenses --format yaml --output THIRDPARTY.yml

export CARGO_NET_GIT_FETCH_WITH_CLI=true
"${PYTHON}" -m pip install . -vv --no-deps --no-build-isolation
