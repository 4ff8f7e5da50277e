#!/usr/bin/env bash
# Installs Debian packages with apt-get (through sudo unless root), after refreshing the
# package lists, which a fresh machine may not have. The scripts call it with what is missing:
#   scripts/apt-install.sh PACKAGE...
# BAKERY_APT_ALLOW_DOWNGRADES=1 lets apt install an older version than the one installed
# (scripts/setup.sh pins qemu-utils to the version of the QEMU it installs).
set -euo pipefail
[ $# -gt 0 ] || exit 0
echo "installing ${*} with apt-get" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
extra=()
[ "${BAKERY_APT_ALLOW_DOWNGRADES:-}" != 1 ] || extra+=(--allow-downgrades)
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends ${extra[@]+"${extra[@]}"} "$@" >/dev/null
