#!/usr/bin/env bash
# Installs what Bakery's local provider and its tests need on a Debian or Ubuntu machine:
# QEMU, qemu-img, mmdebstrap, genisoimage, e2fsprogs and the OpenSSH client, then checks that
# every one of those tools is really there and runs. Safe to re-run: with every tool present it
# installs nothing. Needs root (or sudo) the first time.
#
# Traps it guards against (measured on Debian 12 machines, 2026-11):
# - A machine may ship `qemu-utils` from bookworm-backports (10.0) while apt's QEMU is
#   bookworm's 7.2. Installing `qemu-system-x86` alone then makes apt *remove* that
#   `qemu-utils` to satisfy a version conflict, and `qemu-img` is gone; asking for both
#   packages in one call fails instead ("held broken packages"), because the installed
#   `qemu-utils` is the candidate. So QEMU is installed together with `qemu-utils` pinned to
#   the QEMU candidate's version (a downgrade where needed), and apt agrees with itself.
# - apt can remove any other tool to satisfy a dependency, so every tool is checked *after*
#   installing, by running it, and a missing one stops the script here, naming it and what
#   apt removed, instead of twenty minutes later when the first VM should boot.
set -euo pipefail

# tool -> package, and the command that proves the tool runs.
tools=(qemu-system-x86_64 qemu-img mmdebstrap genisoimage mkfs.ext4 ssh)
package_of() {
  case "$1" in
    qemu-system-x86_64) echo qemu-system-x86 ;;
    qemu-img) echo qemu-utils ;;
    mmdebstrap) echo mmdebstrap ;;
    genisoimage) echo genisoimage ;;
    mkfs.ext4) echo e2fsprogs ;;
    ssh) echo openssh-client ;;
  esac
}
runs() {
  case "$1" in
    qemu-system-x86_64) qemu-system-x86_64 --version ;;
    qemu-img) qemu-img --version ;;
    mmdebstrap) mmdebstrap --version ;;
    genisoimage) genisoimage --version ;;
    mkfs.ext4) mkfs.ext4 -V ;;
    ssh) ssh -V ;;
  esac >/dev/null 2>&1
}

missing=()
for t in "${tools[@]}"; do
  runs "$t" || missing+=("$t")
done

if [ ${#missing[@]} -gt 0 ]; then
  need=()
  qemu=false
  for t in "${missing[@]}"; do
    case "$t" in
      qemu-system-x86_64 | qemu-img) qemu=true ;;
      *) need+=("$(package_of "$t")") ;;
    esac
  done
  if $qemu; then
    # QEMU and qemu-utils as one consistent set: the version apt will install for QEMU.
    # apt-cache needs package lists; apt-install.sh refreshes them, so refresh here first.
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2 || true
    version=$(apt-cache policy qemu-system-x86 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
      echo "setup: apt has no qemu-system-x86 package to install; install QEMU (qemu-system-x86_64 and qemu-img) by hand and re-run" >&2
      exit 3
    fi
    need+=(qemu-system-x86 "qemu-utils=$version")
    export BAKERY_APT_ALLOW_DOWNGRADES=1
  fi
  before=$(mktemp)
  trap 'rm -f "$before"' EXIT
  dpkg-query -W -f '${Package}\n' >"$before" 2>/dev/null || true
  if ! "$(dirname "$0")/apt-install.sh" "${need[@]}"; then
    echo "setup: apt-get could not install ${need[*]} (its message is above); needed for: ${missing[*]}" >&2
    exit 3
  fi
  still=()
  for t in "${tools[@]}"; do
    runs "$t" || still+=("$t")
  done
  if [ ${#still[@]} -gt 0 ]; then
    removed=$(dpkg-query -W -f '${Package}\n' 2>/dev/null | sort | comm -23 <(sort "$before") - | tr '\n' ' ')
    for t in "${still[@]}"; do
      echo "setup: $t does not run after installing (package $(package_of "$t"))" >&2
    done
    [ -z "$removed" ] || echo "setup: apt removed: $removed(see /var/log/apt/history.log)" >&2
    echo "setup: install the packages above so that each tool runs, then re-run" >&2
    exit 3
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install the Rust toolchain (https://rustup.rs) and re-run" >&2
  exit 2
fi
