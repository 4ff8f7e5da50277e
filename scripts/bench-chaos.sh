#!/usr/bin/env bash
# Two costs of the chaos gate, measured on one image baked from examples/local/bakery.yml:
#
#  overhead  the built-in suite `chaos-systemd` (with services: [nginx]) on a chaos probe: the
#            sum over its experiments of (experiment time - the fault's own duration - the time
#            the probe took to make it - time to recover). Time to recover is the image's (a
#            shutdown and boot after reboot or stop-start, a restart after SIGKILL); making
#            the fault is the fault's (the memory fill, timed by its own script and printed as
#            "filled in N s"); what is left is Bakery's: steady states, the rollback written,
#            the dead-man's switch armed, polls, the verified rollback. `with-making` adds the
#            fill back.
#  parallel  the verify stage of the example (probe `main`: smoke and web; probe `chaos`: the
#            web-chaos experiments, side by side) against each group verified alone.
#
#   scripts/bench-chaos.sh [RUNS]        (default 3; prints each run and the medians)
#
# BAKERY_BIN=path skips the build; BAKERY_DATA_DIR=dir reuses a data directory (its base
# image), else a fresh one is bootstrapped and removed at the end. BAKERY_IMAGE=id skips the
# bake and measures that image (one baked from examples/local/bakery.yml in that directory).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
. scripts/target-dir.sh
scripts/setup.sh
if [ -z "${BAKERY_BIN:-}" ]; then
  cargo build --release --quiet
  BAKERY_BIN=$CARGO_TARGET_DIR/release/bakery
fi
bin=$BAKERY_BIN
work=$(mktemp -d "${TMPDIR:-/tmp}/bakery-bench-chaos.XXXXXX")
if [ -z "${BAKERY_DATA_DIR:-}" ]; then
  export BAKERY_DATA_DIR=$work/data
  trap 'rm -rf "$work"' EXIT
  $bin image bootstrap debian-12 >/dev/null
else
  trap 'rm -rf "$work"' EXIT
fi

if [ -n "${BAKERY_IMAGE:-}" ]; then
  image=$BAKERY_IMAGE
else
  image=$($bin bake -f examples/local/bakery.yml 2>"$work/bake.log") || {
    tail -n 40 "$work/bake.log" >&2
    exit 1
  }
fi
echo "image $image"
cp examples/local/web.yml examples/local/web-chaos.yml examples/local/web-reboot.yml "$work/"

# A pipeline whose verify section is $1 (YAML, indented two spaces).
pipeline() {
  printf 'provider: local\nsource:\n  local: debian-12\nimage:\n  name: bench\nverify:\n%s\n  junit: results/%s.xml\n' "$2" "$1" >"$work/$1.yml"
}
pipeline both '  suites: [{builtin: smoke}, web.yml, web-chaos.yml, web-reboot.yml]
  probe: {forward_ports: [80]}
  probes: {chaos: {}}'
pipeline main '  suites: [{builtin: smoke}, web.yml]
  probe: {forward_ports: [80]}'
pipeline chaos '  suites: [web-chaos.yml, web-reboot.yml]
  probes: {chaos: {}}'
pipeline systemd '  suites: [{builtin: chaos-systemd, variables: {services: [nginx]}}]
  probes: {chaos: {}}'

# The verify stage's time from a run's "timings:" lines.
verify_secs() { sed -n 's/^  verify *\([0-9.]*\)s$/\1/p' "$1" | tail -n 1; }

for i in $(seq "$runs"); do
  for p in both main chaos systemd; do
    if ! $bin verify -f "$work/$p.yml" --image "$image" >/dev/null 2>"$work/$p-$i.log"; then
      echo "run $i: verify $p failed; its output:" >&2
      tail -n 60 "$work/$p-$i.log" >&2
      exit 1
    fi
    echo "run$i $p $(verify_secs "$work/$p-$i.log")"
  done
  python3 - "$work/results/systemd.json" "$i" <<'EOF'
import json, re, sys
doc = json.load(open(sys.argv[1]))
total = 0.0
making_total = 0.0
for suite in doc["suites"]:
    for r in suite["results"]:
        x = r.get("experiment")
        if not x:
            continue
        # The time the probe spent making the fault (a memory fill), as the fault's own
        # script reports it in the inject phase: the fault's, not Bakery's.
        making = 0.0
        for p in x["phases"]:
            m = re.search(r"filled in ([0-9.]+) s", p.get("detail") or "")
            if p["phase"] == "inject" and m:
                making = float(m.group(1))
        own = r["duration_secs"] - x["duration_secs"] - (x["time_to_recover_secs"] or 0) - making
        print(f"run{sys.argv[2]} exp:{r['id']} {own:.1f}  (total {r['duration_secs']:.1f}, fault {x['duration_secs']:.0f}, made in {making:.1f}, recover {x['time_to_recover_secs'] or 0:.1f})")
        total += own
        making_total += making
print(f"run{sys.argv[2]} overhead {total:.1f}")
print(f"run{sys.argv[2]} with-making {total + making_total:.1f}")
EOF
done | tee "$work/all.txt"

echo "medians over $runs runs (seconds):"
awk '$2 !~ /^exp:/ { v[$2]=v[$2] " " $3 } END { for (k in v) print k, v[k] }' "$work/all.txt" |
  while read -r what values; do
    median=$(printf '%s\n' $values | sort -n | awk '{a[NR]=$1} END { print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }')
    printf '  %-10s %6s\n' "$what" "$median"
  done | sort
