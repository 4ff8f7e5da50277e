#!/usr/bin/env bash
# ansible-playbook for the `ansible` provisioner's tests and the Ansible example, in a
# virtualenv under .cache/ (gitignored). The version is pinned: ansible-core 2.17 runs on
# Python 3.10 to 3.12 on this machine and manages Python 3.7 or later on the builder.
#   scripts/ansible.sh install   install once (idempotent), check it, print the venv's bin dir
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
version=2.17.14
venv=.cache/ansible-venv
bin="$PWD/$venv/bin"
installed() {
  local shown
  [ -x "$bin/ansible-playbook" ] && shown=$("$bin/ansible-playbook" --version 2>/dev/null) &&
    [[ "$shown" == *"[core $version]"* ]] && [ -x "$bin/ansible-galaxy" ]
}
install() {
  if installed; then
    return
  fi
  fresh_venv "$venv" "ansible-core==$version"
  if ! installed; then
    echo "ansible.sh: $bin/ansible-playbook does not run as ansible-core $version after installing it:" >&2
    "$bin/ansible-playbook" --version >&2 || true
    exit 1
  fi
}
case "${1:-install}" in
  install) install; echo "$bin" ;;
  *) echo "usage: scripts/ansible.sh install" >&2; exit 2 ;;
esac
