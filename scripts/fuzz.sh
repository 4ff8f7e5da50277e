#!/usr/bin/env bash
# Fuzzes every loader and probe-output parser (src/fuzz.rs) for about MINUTES in all
# (default 10), one target after the other on one core, with fresh random seeds; prints the
# inputs tried per target and in all. An input that panics is shrunk and kept under
# tests/fuzz-regressions/<target>/, which every `cargo test` replays from then on; the script
# then fails, naming it. Nothing boots.
#
#   scripts/fuzz.sh [MINUTES]
#
# `cargo test` itself runs the same targets with a few fixed cases (BAKERY_FUZZ_CASES).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/target-dir.sh
minutes=${1:-10}
targets=$(grep -c '^fn fuzz_[a-z_]*()' src/fuzz.rs)
per_target=$(( minutes * 60 / targets ))
(( per_target >= 1 )) || per_target=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "fuzz: $targets targets, ${per_target}s each"
# The test binary runs from a copy, so that builds meanwhile neither wait for it nor replace it.
built=$(cargo test --lib --no-run 2>&1 | sed -n 's/.*Executable unittests src\/lib.rs (\(.*\))/\1/p')
[ -x "$built" ] || { echo "fuzz: the library's test binary was not found" >&2; exit 2; }
bin=$(mktemp)
trap 'rm -f "$log" "$bin"' EXIT
cp "$built" "$bin"
chmod +x "$bin"
started=$(date +%s)
status=0
BAKERY_FUZZ_SECONDS=$per_target BAKERY_FUZZ_CASES=${BAKERY_FUZZ_CASES:-256} BAKERY_FUZZ_SAVE=1 \
  "$bin" --quiet fuzz:: --nocapture --test-threads=1 >"$log" 2>&1 || status=$?
elapsed=$(( $(date +%s) - started ))
# libtest's progress dots may share a line with a target's report.
grep -oE 'fuzz: [a-z-]+: [0-9]+ inputs in [0-9.]+ s' "$log" || true
inputs=$( (grep -oE 'fuzz: [a-z-]+: [0-9]+ inputs' "$log" || true) | awk '{n += $3} END {print n + 0}')
panics=$(grep -c 'fuzz: .*: a panic on input' "$log" || true)
echo "fuzz: $inputs inputs in ${elapsed}s, panics: $panics"
if (( status != 0 )); then
  grep -E 'panicked at|a panic on input|kept as' "$log" | head -40
  echo "fuzz: failed; kept inputs are under tests/fuzz-regressions/" >&2
  exit 1
fi
