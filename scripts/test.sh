#!/usr/bin/env bash
# The whole test suite from a fresh clone: install what is missing, then run every test,
# the end-to-end runs of both local examples on real QEMU guests included.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/target-dir.sh
scripts/setup.sh
# moto's server for the aws_* tests, in .cache/moto-venv (installed once, idempotent); each
# test binary starts it on a free 127.0.0.1 port itself.
scripts/moto.sh install >/dev/null
# The pinned ansible-core for tests/ansible_guest.rs, in .cache/ansible-venv (installed once,
# checked after install); the tests put it on PATH themselves.
scripts/ansible.sh install >/dev/null
# The GitHub Action's tests (tests/action_*.rs, tests/github_*.rs), each installed once:
# GitHub's REST description (npm @octokit/openapi) in .cache/github-openapi, junitparser (PyPI)
# in .cache/junit-venv, the workflow linters (scripts/lint-workflows.sh), and the action's
# container image (podman, runc, musl-tools, the Rust musl target; scripts/container-test.sh).
# Nothing is skipped: a missing piece fails its test.
action_deps=()
command -v npm >/dev/null 2>&1 || action_deps+=(nodejs npm)
python3 -c 'import ensurepip' >/dev/null 2>&1 || action_deps+=(python3-venv)
scripts/apt-install.sh ${action_deps[@]+"${action_deps[@]}"}
if [ ! -f .cache/github-openapi/node_modules/@octokit/openapi/generated/api.github.com.json ]; then
  mkdir -p .cache/github-openapi
  npm install --prefix .cache/github-openapi --no-audit --no-fund --silent '@octokit/openapi@^23'
fi
if ! .cache/junit-venv/bin/python -c 'import junitparser' >/dev/null 2>&1; then
  python3 -m venv .cache/junit-venv
  .cache/junit-venv/bin/pip install --quiet 'junitparser>=3'
fi
scripts/container-test.sh build >/dev/null
# The GitHub Actions linters (zizmor, actionlint, check-jsonschema in .cache/lint-venv, and
# ShellCheck) for tests/action_lint.rs.
scripts/lint-workflows.sh install
# The local-only build that scripts/run-example.sh makes (no AWS SDK, no GitHub client) must
# keep compiling without warnings.
cargo clippy --quiet --no-default-features --lib --bins -- -D warnings
# Every library, binary and integration test, built first. The benchmark (benches/checks) is
# built by clippy and run by scripts/bench-checks.sh, not here: it boots a VM and times tools
# for minutes.
cargo test --no-run --lib --bins --tests

# The tests then run in four lanes side by side, because most of the suite's time is spent in
# tests that boot QEMU guests and then wait: for a fault to last, a service to recover, a
# probe to reboot. Lanes `guests`, `rest` and `bakes` each have one VM place of their own
# (`vm_lock()` in tests/common), so three guests run at once, one per lane, and no lane waits
# for another's guests; on two cores that finishes sooner than fewer at a time, because a
# guest spends much of a test waiting (BENCHMARKS.md, "Test suite"). Lanes `guests` and
# `bakes` hold the guest tests listed here, lane `rest` the other guest tests, and lane `light`
# the library and every test binary that boots no guest (moto, the container, the linters:
# mostly waiting on other processes, so they fill the time the guests leave the processors
# idle). Each line of output names its lane.
# Every guest gets one virtual CPU (BAKERY_LOCAL_MAX_CPUS): with several emulated guests on
# two cores, a guest's second processor spins on locks held by a descheduled first one, and
# three probes booting at once came up after 163 s with two each against 119 s with one
# (BENCHMARKS.md, "Virtual CPUs of emulated guests running side by side").
export BAKERY_LOCAL_MAX_CPUS="${BAKERY_LOCAL_MAX_CPUS:-1}"
guest_lane=(chaos_guest engine_guest)
bakes_lane=(ansible_guest cis_guest)
light=()
heavy=()
for file in tests/*.rs; do
  name=$(basename "$file" .rs)
  case " ${guest_lane[*]} ${bakes_lane[*]} " in *" $name "*) continue ;; esac
  if grep -q 'vm_lock()' "$file"; then heavy+=("$name"); else light+=("$name"); fi
done
lane() {
  local name=$1 args=()
  shift
  while [ "$1" != -- ]; do
    case "$1" in --*) args+=("$1") ;; *) args+=(--test "$1") ;; esac
    shift
  done
  shift
  cargo test --no-fail-fast "${args[@]}" -- --test-threads=2 "$@" 2>&1 | sed -u "s/^/[$name] /"
}
trap 'kill -TERM 0' INT TERM
pids=()
BAKERY_TEST_VM_PLACES=0 lane guests "${guest_lane[@]}" -- "$@" &
pids+=("guests:$!")
BAKERY_TEST_VM_PLACES=2 lane bakes "${bakes_lane[@]}" -- "$@" &
pids+=("bakes:$!")
lane light --lib --bins "${light[@]}" -- "$@" &
pids+=("light:$!")
BAKERY_TEST_VM_PLACES=1 lane rest "${heavy[@]}" -- "$@" &
pids+=("rest:$!")
failed=()
for entry in "${pids[@]}"; do
  wait "${entry#*:}" || failed+=("${entry%%:*} (exit $?)")
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "test.sh: tests failed in lane ${failed[*]}; search the log for FAILED or 'panicked'" >&2
  exit 1
fi
