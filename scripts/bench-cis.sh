#!/usr/bin/env bash
# The CIS Debian 12 Level 1 Server suite's time on one probe of the stock base image, for one
# or more bakery binaries, runs interleaved (A B A B ...) so that each binary meets the same
# machine load. Each run is `bakery verify` of the smoke suite and the CIS suite on a fresh
# probe; the suite time is the CIS suite's duration_secs in the JSON results (it starts on an
# open SSH connection after smoke, so boot is not in it). Prints one line per run, then the
# median per binary. See BENCHMARKS.md.
#   scripts/bench-cis.sh [--runs N] BAKERY_BINARY...
# The base image comes from $BAKERY_DATA_DIR (default ~/.local/share/bakery): bootstrap it
# first with `bakery image bootstrap debian-12`. Each run gets a data directory of its own
# holding hard links to it.
set -euo pipefail
runs=3
if [ "${1:-}" = --runs ]; then runs=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [--runs N] BAKERY_BINARY..." >&2; exit 2; }
store=${BAKERY_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/bakery}
base=$(grep -l '"bakery:base": "debian-12"' "$store"/images/*/image.json 2>/dev/null | head -n 1 || true)
[ -n "$base" ] || { echo "no debian-12 base image in $store; run: bakery image bootstrap debian-12" >&2; exit 2; }
base=$(dirname "$base"); id=$(basename "$base")
work=$(mktemp -d /tmp/bakery-bench-cis.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat > "$work/bakery.yml" <<'YAML'
source: {local: debian-12}
image: {name: "cis-bench-{{timestamp}}"}
verify:
  suites:
    - builtin: smoke
    - cis: {benchmark: debian-12, profile: level-1-server}
  junit: results/junit.xml
YAML
for _ in $(seq "$runs"); do
  for bin in "$@"; do
    data="$work/data"; rm -rf "$data" "$work/results"
    mkdir -p "$data/images/$id/boot"
    for f in disk.qcow2 boot/vmlinuz boot/initrd.img; do ln "$base/$f" "$data/images/$id/$f"; done
    cp "$base/image.json" "$data/images/$id/"
    [ -f "$store/accel.json" ] && cp "$store/accel.json" "$data/"
    load=$(cut -d' ' -f1 /proc/loadavg)
    BAKERY_DATA_DIR=$data "$bin" verify -f "$work/bakery.yml" --image "$id" > "$work/out.txt" 2>&1 || true
    python3 - "$bin" "$load" "$work/results/junit.json" <<'PY' | tee -a "$work/times.txt"
import json, sys
bin, load, path = sys.argv[1:]
try:
    doc = json.load(open(path))
except OSError:
    print(f"{bin}\tfailed (no results; see the run's output)\tload {load}")
    sys.exit()
for s in doc["suites"]:
    if s["suite"].startswith("cis-"):
        print(f"{bin}\t{s['duration_secs']:.1f}\t{len(s['results'])} controls\tload {load}")
PY
  done
done
echo "median suite time:"
python3 - "$work/times.txt" <<'PY'
import statistics, sys, collections
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split("\t")
    try:
        t[f[0]].append(float(f[1]))
    except ValueError:
        pass
for bin, v in t.items():
    print(f"  {bin}: {statistics.median(v):.1f} s over {len(v)} runs ({', '.join(f'{x:.1f}' for x in v)})")
PY
