#!/usr/bin/env bash
# Installs what Bakery's local provider and its tests need on a Debian or Ubuntu machine:
# QEMU, qemu-img, mmdebstrap, genisoimage, e2fsprogs and the OpenSSH client. Safe to re-run:
# it installs only what is missing. Needs root (or sudo) the first time.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || need+=(qemu-system-x86)
have qemu-img || need+=(qemu-utils)
have mmdebstrap || need+=(mmdebstrap)
have genisoimage || need+=(genisoimage)
have mkfs.ext4 || need+=(e2fsprogs)
have ssh || need+=(openssh-client)

"$(dirname "$0")/apt-install.sh" ${need[@]+"${need[@]}"}

if ! have cargo; then
  echo "setup: cargo is missing; install the Rust toolchain (https://rustup.rs) and re-run" >&2
  exit 2
fi
