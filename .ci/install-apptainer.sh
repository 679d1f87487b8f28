#!/usr/bin/env bash
# Installs Apptainer for tests/test_apptainer.py and prints the folder that holds `apptainer`.
#
# No registry reachable from CI serves Apptainer, so it is built from the source kept beside the
# project (../shared/tools/build-apptainer.sh: Apptainer 1.5.3, Go modules from the module proxy,
# ~5.5 min on 2 cores, instant once built). Elsewhere install it as your distribution or
# https://apptainer.org/docs/admin/latest/installation.html says; an `apptainer` on PATH is used
# as it is. The prefix is /opt/apptainer (not root's home) so that an ordinary user can run it,
# as on a cluster: the tests run containers as such a user.
#
# Also installs Debian's squashfuse: with it, Apptainer mounts a SIF through FUSE for an
# unprivileged user; without it, it copies the whole image into a temporary folder on every run.
# Safe to run again; needs root (or sudo) and no stdin. Exit status 3: no Apptainer and no source
# to build it from.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[install-apptainer] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else die "needs root or sudo"; fi
fi

prefix=${APPTAINER_PREFIX:-/opt/apptainer}
builder=${VAEBIN_SHARED:-../shared}/tools/build-apptainer.sh

packages=(squashfuse fuse3)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt_log=$(mktemp "${TMPDIR:-/tmp}/install-apptainer-apt.XXXXXX.log")
  export DEBIAN_FRONTEND=noninteractive
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"; } </dev/null >"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2
    die "apt-get failed; full log: $apt_log"
  fi
  rm -f "$apt_log"
fi
# squashfuse opens /dev/fuse as the user who runs the container: Debian makes it 0666, some
# sandboxes leave it 0600.
if [ -c /dev/fuse ] && [ "$(stat -c %a /dev/fuse)" != 666 ]; then
  $SUDO chmod 666 /dev/fuse || log "warning: cannot make /dev/fuse usable by all users"
fi

if [ -x "$prefix/bin/apptainer" ]; then
  bindir="$prefix/bin"
elif command -v apptainer >/dev/null 2>&1; then
  bindir=$(dirname "$(command -v apptainer)")
elif [ -f "$builder" ]; then
  log "building Apptainer from source into $prefix ($builder, ~5.5 min)"
  build_log=$(mktemp "${TMPDIR:-/tmp}/install-apptainer-build.XXXXXX.log")
  started=$SECONDS
  if ! $SUDO bash "$builder" "$prefix" </dev/null >"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2
    die "building Apptainer failed; full log: $build_log"
  fi
  rm -f "$build_log"
  log "built in $((SECONDS - started)) s"
  bindir="$prefix/bin"
else
  log "error: no apptainer on PATH and no $builder to build it from"
  exit 3
fi
log "$("$bindir/apptainer" --version), squashfuse $(dpkg-query -W -f '${Version}' squashfuse)"
printf '%s\n' "$bindir"
