#!/usr/bin/env bash
# The check engine vs pytest-testinfra (paramiko; ssh with a ControlPath), one ssh process per
# check and one shell script in a single exec (the naive floor): 500 mixed checks on the same
# local VM, as is and with 50 ms of RTT added inside the guest (tc netem). Prints checks/second
# and the ratios (see BENCHMARKS.md). Options go to the bench program:
#   scripts/bench-checks.sh [--runs N] [--ssh-sample N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
venv=.cache/bench-venv
if ! "$venv/bin/python" -c 'import testinfra, paramiko, xdist' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pytest-testinfra paramiko pytest-xdist
fi
# The dev profile by default: the engine's own CPU time is a small part of what is timed (guest
# processes and round trips are the rest), and a release build of the AWS SDK linked into the
# bench takes 15-20 minutes on two cores. BAKERY_BENCH_PROFILE=release measures that build.
. scripts/target-dir.sh
exec cargo bench --quiet --profile "${BAKERY_BENCH_PROFILE:-dev}" --bench checks -- \
  --python "$venv/bin/python" "$@"
