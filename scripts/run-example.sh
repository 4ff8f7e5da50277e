#!/usr/bin/env bash
# The local example from a fresh clone: install what is missing, build Bakery, then bake,
# verify and promote examples/local/bakery.yml on QEMU. Extra arguments go to `bakery run`.
#
# The example needs only the local provider, so it builds a local-only Bakery (cargo feature
# `aws` and `github` left out, `--no-default-features`): on a cold 2-core machine that build
# takes a few minutes, where the full binary with the AWS SDK takes about twenty
# (BENCHMARKS.md, "Cold start"). `cargo install --path .` and the action build the full one.
# BAKERY_EXAMPLE_FULL=1 builds and runs the full binary instead.
#
# `scripts/run-example.sh ansible` bakes the same image with an Ansible playbook
# (examples/local/ansible.yml): it installs the pinned ansible-core into .cache/ansible-venv
# first (scripts/ansible.sh, once) and puts its ansible-playbook on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/target-dir.sh
pipeline=examples/local/bakery.yml
if [ "${1:-}" = ansible ]; then
  shift
  pipeline=examples/local/ansible.yml
fi
scripts/setup.sh
if [ "$pipeline" = examples/local/ansible.yml ]; then
  ansible_bin=$(scripts/ansible.sh install)
  export PATH="$ansible_bin:$PATH"
  echo "run-example: $("$ansible_bin/ansible-playbook" --version | head -1) from $ansible_bin" >&2
fi

if [ "${BAKERY_EXAMPLE_FULL:-}" = 1 ]; then
  build=(cargo build --release --quiet)
  bin=$CARGO_TARGET_DIR/release/bakery
  cold="about 20 min"
else
  build=(cargo build --profile local-example --no-default-features --quiet)
  bin=$CARGO_TARGET_DIR/local-example/bakery
  cold="about 3 min"
fi
data=${BAKERY_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/bakery}
if [ -x "$bin" ]; then build_eta="seconds (built before)"; else build_eta="$cold (first build on this machine)"; fi
if compgen -G "$data/images/*" >/dev/null 2>&1; then base_eta="none (kept from an earlier run)"; else base_eta="about 1 min (first run only)"; fi
echo "run-example: build $build_eta; Debian 12 base image $base_eta; bake about 3 min; verify about 3 min (two probes; one is rebooted)" >&2

"${build[@]}"
exec "$bin" run -f "$pipeline" "$@"
