#!/usr/bin/env bash
# Installs what tests/test_slurm.py needs to start a one-node SLURM cluster on localhost: Debian's
# SLURM 22.05 controller, node daemon and client commands, and munge for their authentication.
# Only the programs: the packages' own services are not started (the test runs the daemons itself,
# with its own configuration, key, ports and state folders). Safe to run again; needs root (or
# sudo) and no stdin.
set -euo pipefail

log() { printf '[install-slurm] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    log "error: needs root or sudo"
    exit 1
  fi
fi

packages=(slurmctld slurmd slurm-client munge)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  # policy-rc.d 101: the packages' post-install scripts must not start munge/slurmctld/slurmd
  # services with Debian's configuration (there is no init system in a container anyway).
  policy=/usr/sbin/policy-rc.d
  had_policy=0
  [ -e "$policy" ] && had_policy=1
  if [ "$had_policy" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt_log=$(mktemp "${TMPDIR:-/tmp}/install-slurm.XXXXXX.log")
  status=0
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"; } </dev/null >"$apt_log" 2>&1 || status=$?
  [ "$had_policy" = 1 ] || $SUDO rm -f "$policy"
  if [ "$status" != 0 ]; then
    tail -n 20 "$apt_log" >&2
    log "error: apt-get failed ($status); full log: $apt_log"
    exit "$status"
  fi
  rm -f "$apt_log"
fi

log "$(slurmctld -V), $(munged --version 2>&1 | awk '{print $1}')"
