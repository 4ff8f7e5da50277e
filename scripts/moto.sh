#!/usr/bin/env bash
# moto's server for the AWS tests, in a virtualenv under .cache/ (gitignored).
#   scripts/moto.sh install   install once (idempotent), print the path of moto_server
#   scripts/moto.sh run PORT  run it on 127.0.0.1:PORT in the foreground
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
venv=.cache/moto-venv
bin="$PWD/$venv/bin/moto_server"
install() {
  if [ -x "$bin" ] && "$venv/bin/python" -c 'import moto.server, flask' 2>/dev/null; then
    return
  fi
  fresh_venv "$venv" 'moto[server]>=5,<6'
}
case "${1:-install}" in
  install) install; echo "$bin" ;;
  run) install; exec env MOTO_ENABLE_AMI_VALIDATION=true MOTO_ENABLE_KEYPAIR_VALIDATION=true \
         "$bin" -H 127.0.0.1 -p "${2:?port}" ;;
  *) echo "usage: scripts/moto.sh install | run PORT" >&2; exit 2 ;;
esac
