#!/usr/bin/env bash
# Promotion to four regions vs one against moto (issue 11): each copy is held `pending` for
# --delay seconds by the test proxy; prints each run, the medians and their ratio (target: four
# regions take at most 1.5 times one). See BENCHMARKS.md.
#   scripts/bench-promote.sh [--runs N] [--delay SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/moto.sh install >/dev/null
. scripts/target-dir.sh
# The dev profile, like scripts/bench-checks.sh: the time is waiting for copies, not code.
exec cargo bench --quiet --profile "${BAKERY_BENCH_PROFILE:-dev}" --bench promote -- "$@"
