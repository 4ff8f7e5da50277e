#!/usr/bin/env bash
# moto's server for the AWS tests, in a virtualenv under .cache/ (gitignored).
#   scripts/moto.sh install   install once (idempotent), print the path of moto_server
#   scripts/moto.sh run PORT  run it on 127.0.0.1:PORT in the foreground
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/moto-venv
bin="$PWD/$venv/bin/moto_server"
install() {
  if [ -x "$bin" ] && "$venv/bin/python" -c 'import moto.server, flask' 2>/dev/null; then
    return
  fi
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    scripts/apt-install.sh python3-venv
  fi
  mkdir -p .cache
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5,<6' >&2
}
case "${1:-install}" in
  install) install; echo "$bin" ;;
  run) install; exec env MOTO_ENABLE_AMI_VALIDATION=true MOTO_ENABLE_KEYPAIR_VALIDATION=true \
         "$bin" -H 127.0.0.1 -p "${2:?port}" ;;
  *) echo "usage: scripts/moto.sh install | run PORT" >&2; exit 2 ;;
esac
