#!/usr/bin/env bash
# Builds the vaebin-rs image with podman from containers/Dockerfile on a machine that cannot pull
# from a container registry (no Docker Hub), only from Debian mirrors, PyPI and crates.io.
#
# The Dockerfile's base images are build arguments. This script makes local stand-ins for the two
# public defaults and passes them in; the Dockerfile itself is the one everybody builds:
#   localhost/vaebin-local/debian:bookworm-slim      debootstrap --variant=minbase bookworm
#   localhost/vaebin-local/rust:1-bookworm           for docker.io/library/rust:1-bookworm:
#                                                    the above + C toolchain + this host's Rust
#   localhost/vaebin-local/python:3.11-slim-bookworm for docker.io/library/python:3.11-slim-bookworm:
#                                                    the above + Debian's python3 (3.11) + venv
# Each base is made once and reused while `podman image exists` finds it (--rebuild-bases redoes
# them). CA certificates the host trusts beyond Debian's (/usr/local/share/ca-certificates, e.g. a
# TLS-inspecting proxy) are trusted in the bases too, so apt, pip and cargo work behind it.
#
# Usage: containers/build-local.sh [--variant cuda|cpu] [--tag IMAGE] [--rebuild-bases]
#                                  [--save ARCHIVE.tar] [--bases-only]
#   --variant  TORCH_VARIANT of the Dockerfile. Default cuda: PyPI serves only the torch wheel
#              that bundles CUDA; cpu needs https://download.pytorch.org (the PyTorch CPU index).
#   --tag      image name [localhost/vaebin-rs:<version>-<variant>]; a cuda build is also tagged
#              localhost/vaebin-rs:<version>, as that torch runs on CPU-only hosts as well.
#   --save     also write a docker-archive for `apptainer build x.sif docker-archive://ARCHIVE.tar`.
# Needs root, podman, buildah and debootstrap (.ci/install-containers.sh installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[build-local] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

variant=cuda
tag=""
rebuild_bases=0
bases_only=0
archive=""
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant=${2:?--variant needs cpu or cuda}; shift 2 ;;
    --tag) tag=${2:?--tag needs an image name}; shift 2 ;;
    --rebuild-bases) rebuild_bases=1; shift ;;
    --bases-only) bases_only=1; shift ;;
    --save) archive=${2:?--save needs a file name}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$variant" in cpu | cuda) ;; *) die "--variant must be cpu or cuda, not '$variant'" ;; esac

# The project's version is Cargo.toml's (the first top-level `version =` is [package]'s).
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || die "no version in Cargo.toml"
tag=${tag:-localhost/vaebin-rs:$version-$variant}

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
site_ca_dir=${SITE_CA_DIR:-/usr/local/share/ca-certificates}
debian_base=localhost/vaebin-local/debian:bookworm-slim
builder_base=localhost/vaebin-local/rust:1-bookworm
runtime_base=localhost/vaebin-local/python:3.11-slim-bookworm

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and rootful podman)"
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run .ci/install-containers.sh"
done

work=$(mktemp -d "${TMPDIR:-/var/tmp}/vaebin-build-local.XXXXXX")
trap 'rm -rf "$work"' EXIT

needs_base() {
  [ "$rebuild_bases" = 1 ] || ! podman image exists "$1"
}

# Site certificates: copied into the Debian base and registered with update-ca-certificates, which
# apt and cargo read; pip is told to use that system bundle instead of its own (certifi).
site_cas=()
if [ -d "$site_ca_dir" ]; then
  while IFS= read -r -d '' certificate; do site_cas+=("$certificate"); done \
    < <(find "$site_ca_dir" -maxdepth 1 -name '*.crt' -print0)
fi

build_debian_base() {
  local rootfs="$work/rootfs"
  log "debootstrap bookworm (minbase) from $mirror -> $debian_base"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  # The same apt sources as the official Debian images (deb822 file, updates and security).
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Like the official slim images: apt keeps no package caches or translations in a layer, and
  # dpkg leaves out documentation, manual pages and locales of what is installed later.
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/usr/share/lintian/*
  local changes=(--change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]')
  if [ "${#site_cas[@]}" -gt 0 ]; then
    log "trusting ${#site_cas[@]} site CA certificate(s) from $site_ca_dir"
    cp "${site_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null
    changes+=(--change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt')
  fi
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/*
  tar --numeric-owner -C "$rootfs" -c . |
    podman import "${changes[@]}" --message "debootstrap bookworm minbase" - "$debian_base" >/dev/null
  rm -rf "$rootfs"
}

build_builder_base() {
  # rust:1-bookworm is buildpack-deps:bookworm (C toolchain, headers, git, curl) plus rustup's
  # stable toolchain in /usr/local/{rustup,cargo}. The toolchain is this host's active one,
  # without its HTML documentation.
  local sysroot toolchain rustup_bin
  sysroot=$(rustc --print sysroot) || die "no Rust toolchain on this host"
  toolchain=$(basename "$sysroot")
  rustup_bin=$(command -v rustup) || die "rustup not found on this host"
  log "$builder_base: $debian_base + build tools + Rust $(rustc --version | awk '{print $2}') ($toolchain)"
  cat >"$work/Containerfile.rust" <<EOF
FROM $debian_base
RUN apt-get update \\
    && apt-get install -y --no-install-recommends gcc g++ libc6-dev make pkg-config libssl-dev \\
       curl git xz-utils file python3 \\
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup \\
    CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/rustup/toolchains /usr/local/cargo/bin \\
    && cp -a /host/toolchain /usr/local/rustup/toolchains/$toolchain \\
    && rm -rf /usr/local/rustup/toolchains/$toolchain/share/doc \\
    && printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' $toolchain \\
       > /usr/local/rustup/settings.toml \\
    && install -m 755 /host/rustup /usr/local/cargo/bin/rustup \\
    && for proxy in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do \\
         ln -s rustup /usr/local/cargo/bin/\$proxy; \\
       done \\
    && chmod -R a+w /usr/local/rustup /usr/local/cargo \\
    && rustup --version && cargo --version && rustc --version
EOF
  podman build --pull=never --network host -f "$work/Containerfile.rust" \
    --volume "$sysroot:/host/toolchain:ro" --volume "$rustup_bin:/host/rustup:ro" \
    -t "$builder_base" "$work"
}

build_runtime_base() {
  # python:3.11-slim-bookworm is Debian slim + CPython 3.11 with pip and venv; Debian's python3
  # is 3.11 as well.
  log "$runtime_base: $debian_base + python3 (3.11) + venv"
  cat >"$work/Containerfile.python" <<EOF
FROM $debian_base
RUN apt-get update \\
    && apt-get install -y --no-install-recommends python3 python3-venv \\
    && rm -rf /var/lib/apt/lists/* \\
    && ln -s python3 /usr/bin/python \\
    && python3 --version
CMD ["python3"]
EOF
  podman build --pull=never --network host -f "$work/Containerfile.python" -t "$runtime_base" "$work"
}

started=$SECONDS
if needs_base "$debian_base"; then build_debian_base; else log "reusing $debian_base"; fi
if needs_base "$builder_base"; then build_builder_base; else log "reusing $builder_base"; fi
if needs_base "$runtime_base"; then build_runtime_base; else log "reusing $runtime_base"; fi
log "base images ready ($((SECONDS - started)) s)"
[ "$bases_only" = 1 ] && exit 0

log "building $tag (TORCH_VARIANT=$variant) from containers/Dockerfile"
podman build --pull=never --network host --layers \
  -f containers/Dockerfile \
  --build-arg BUILDER_IMAGE="$builder_base" \
  --build-arg RUNTIME_IMAGE="$runtime_base" \
  --build-arg TORCH_VARIANT="$variant" \
  --build-arg VAEBIN_VERSION="$version" \
  --build-arg VCS_REF="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$tag" .
if [ "$variant" = cuda ]; then
  podman tag "$tag" "localhost/vaebin-rs:$version"
fi
if [ -n "$archive" ]; then
  log "saving $tag to $archive (docker-archive)"
  rm -f "$archive"
  podman save --format docker-archive -o "$archive" "$tag"
fi
size=$(podman image inspect --format '{{.Size}}' "$tag")
log "done in $((SECONDS - started)) s: $tag ($((size / 1000000)) MB)"
