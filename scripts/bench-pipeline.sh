#!/usr/bin/env bash
# Times the local pipeline's stages: a base image bootstrap into a fresh data directory, then
# RUNS (default 3) runs of examples/local/bakery.yml from the bootstrapped image. Prints each
# run's stage timings and the median per stage; paste the result into BENCHMARKS.md.
#   scripts/bench-pipeline.sh [RUNS]          (BAKERY_BIN=path skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
. scripts/target-dir.sh
scripts/setup.sh
# BAKERY_BIN picks a binary already built (the stages' time is the guest's, not Bakery's).
if [ -z "${BAKERY_BIN:-}" ]; then
  cargo build --release --quiet
  BAKERY_BIN=$CARGO_TARGET_DIR/release/bakery
fi
bin=$BAKERY_BIN
data=$(mktemp -d "${TMPDIR:-/tmp}/bakery-bench.XXXXXX")
trap 'rm -rf "$data"' EXIT
export BAKERY_DATA_DIR=$data

since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

start=$(date +%s.%N)
$bin image bootstrap debian-12 >/dev/null 2>&1
echo "bootstrap $(since "$start")"

for i in $(seq "$runs"); do
  start=$(date +%s.%N)
  if ! $bin run -f examples/local/bakery.yml >/dev/null 2>"$data/run-$i.log"; then
    echo "run $i failed; its output:" >&2
    tail -n 60 "$data/run-$i.log" >&2
    exit 1
  fi
  total=$(since "$start")
  # The run prints "timings:" followed by "  <stage> <seconds>s" lines.
  sed -n '/^timings:/,/^$/p' "$data/run-$i.log" | awk -v run="$i" 'NF==2 || NF==3 {
      secs=$NF; sub(/s$/, "", secs); name=$1; if (NF==3) name=$1 "_" $2; print "run" run, name, secs }'
  echo "run$i total $total"
done | tee "$data/all.txt"

echo "median over $runs runs (seconds):"
awk '{ v[$2]=v[$2] " " $3 } END { for (k in v) print k, v[k] }' "$data/all.txt" |
  while read -r stage values; do
    median=$(printf '%s\n' $values | sort -n | awk '{a[NR]=$1} END { print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }')
    printf '  %-14s %6s\n' "$stage" "$median"
  done | sort
