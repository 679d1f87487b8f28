#!/usr/bin/env bash
# Installs the tools that build and test the vaebin-rs container images without a Docker engine:
# podman and buildah (daemonless, OCI), runc as the runtime, debootstrap for the local base images
# that stand in for public ones when no container registry can be reached, and fuse-overlayfs
# for hosts whose kernel overlayfs cannot stack on the root file system. Safe to run again;
# needs root (or sudo) and no stdin.
set -euo pipefail

log() { printf '[install-containers] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    log "error: needs root or sudo"
    exit 1
  fi
fi

packages=(podman buildah runc debootstrap fuse-overlayfs uidmap slirp4netns ca-certificates)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's podman defaults to crun, which is not pulled in above; runc is. The default ulimits
# (nofile/nproc) cannot be raised inside some sandboxes and fail every container start, so the
# runtime's own limits are kept. Only these two keys are managed; the rest of the file is left
# as the administrator wrote it.
conf=/etc/containers/containers.conf
$SUDO mkdir -p /etc/containers
[ -f "$conf" ] || printf '[containers]\n\n[engine]\n' | $SUDO tee "$conf" >/dev/null
if ! grep -q '^\[containers\]' "$conf"; then
  printf '\n[containers]\n' | $SUDO tee -a "$conf" >/dev/null
fi
if ! grep -q '^\[engine\]' "$conf"; then
  printf '\n[engine]\n' | $SUDO tee -a "$conf" >/dev/null
fi
if ! grep -q '^default_ulimits' "$conf"; then
  $SUDO sed -i 's/^\[containers\]$/[containers]\ndefault_ulimits = []/' "$conf"
fi
if ! grep -q '^runtime *=' "$conf"; then
  $SUDO sed -i 's/^\[engine\]$/[engine]\nruntime = "runc"/' "$conf"
fi

log "podman $(podman --version | awk '{print $3}'), buildah $(buildah --version | awk '{print $3}'), runtime $(podman info --format '{{.Host.OCIRuntime.Name}}')"
