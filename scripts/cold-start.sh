#!/usr/bin/env bash
# Reproduces a newcomer's first command as closely as this machine allows and times it: a
# fresh clone, an empty cargo target directory and an empty data directory, then the README's
# first command (scripts/run-example.sh) through to a promoted image. Prints each phase's time
# (setup, build, then the pipeline's own stages) and the total; BENCHMARKS.md keeps the results.
#
#   scripts/cold-start.sh [--qemu-trap] [--rev REV] [--full]
#
# --qemu-trap  first puts the machine in the state fresh machines of this kind come in (needs
#              root, changes the machine's packages): QEMU removed, and `qemu-utils` 10.0 from
#              bookworm-backports installed, a newer version than the QEMU apt installs, so
#              that setup meets the trap it must get through (scripts/setup.sh explains it).
# --rev REV    clone this revision instead of HEAD (for a before/after comparison).
# --full       build the full binary (BAKERY_EXAMPLE_FULL=1), as before the local-only build.
# Nothing is kept: the clone, target and data directories are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
rev=HEAD trap_qemu=false full=false
while [ $# -gt 0 ]; do
  case "$1" in
    --qemu-trap) trap_qemu=true ;;
    --rev) rev=$2; shift ;;
    --full) full=true ;;
    *) echo "cold-start: unknown argument $1 (accepted: --qemu-trap, --rev REV, --full)" >&2; exit 2 ;;
  esac
  shift
done
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bakery-cold.XXXXXX")
trap 'rm -rf "$work"' EXIT

if $trap_qemu; then
  [ "$(id -u)" -eq 0 ] || { echo "cold-start: --qemu-trap needs root" >&2; exit 2; }
  echo "cold-start: removing QEMU and installing qemu-utils from bookworm-backports" >&2
  apt-get remove -y -qq qemu-system-x86 qemu-system-common qemu-system-data qemu-utils >/dev/null
  bpo=$work/apt-bpo
  mkdir -p "$bpo/lists/partial" "$bpo/archives/partial"
  echo "deb http://deb.debian.org/debian bookworm-backports main" >"$bpo/sources.list"
  apt_bpo=(-o "Dir::Etc::sourcelist=$bpo/sources.list" -o Dir::Etc::sourceparts=- \
    -o "Dir::State::lists=$bpo/lists" -o "Dir::Cache::archives=$bpo/archives")
  apt-get "${apt_bpo[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_bpo[@]}" install -y -qq --no-install-recommends \
    qemu-utils/bookworm-backports >/dev/null
  echo "cold-start: now: $(qemu-img --version | head -1); qemu-system-x86_64: $(command -v qemu-system-x86_64 || echo none)" >&2
fi

git clone --quiet --no-local "$repo" "$work/clone"
git -C "$work/clone" checkout --quiet "$rev"
export CARGO_TARGET_DIR=$work/target BAKERY_DATA_DIR=$work/data
$full && export BAKERY_EXAMPLE_FULL=1

stamp() { date +%s.%N; }
since() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.0f", e - s }'; }
log=$work/run.log
start=$(stamp)
# Each output line with the moment it arrived, so the phases can be told apart afterwards.
set +e
(cd "$work/clone" && scripts/run-example.sh 2>&1) | while IFS= read -r line; do
  printf '%s %s\n' "$(stamp)" "$line"
done >"$log"
status=${PIPESTATUS[0]}
set -e
end=$(stamp)
sed 's/^[0-9.]* //' "$log" | tail -n 40 >&2

# Phases: setup ends when the plan line is printed, the build when bakery prints its first line.
plan=$(awk '/run-example: build/ {print $1; exit}' "$log")
first=$(awk '/run-example: build/ {f=1; next} f {print $1; exit}' "$log")
echo
echo "cold start of $(git -C "$work/clone" rev-parse --short HEAD)$($full && echo ' (full binary)'): exit $status"
[ -z "$plan" ] || echo "  setup            $(since "$start" "$plan") s"
[ -z "$first" ] || echo "  build            $(since "$plan" "$first") s"
sed -n 's/^[0-9.]* \{3\}\([a-z-]*\) *\([0-9.]*\)s$/  \1 \2 s/p' "$log" | awk '{ printf "  %-16s %s s\n", $1, $2 }'
echo "  total            $(since "$start" "$end") s"
exit "$status"
