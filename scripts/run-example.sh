#!/usr/bin/env bash
# The local example from a fresh clone: install what is missing, build Bakery, then bake,
# verify and promote examples/local/bakery.yml on QEMU. The first run also bootstraps the
# Debian 12 base image (about a minute). Extra arguments go to `bakery run`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/target-dir.sh
scripts/setup.sh
cargo build --release --quiet
exec "$CARGO_TARGET_DIR/release/bakery" run -f examples/local/bakery.yml "$@"
