#!/usr/bin/env bash
# The whole test suite from a fresh clone: install what is missing, then run every test,
# the end-to-end runs of both local examples on real QEMU guests included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --all-targets -- --test-threads=2 "$@"
