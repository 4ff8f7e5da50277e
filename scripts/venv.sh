# shellcheck shell=bash
# Sourced by the scripts that install Python tools into venvs under .cache/ (from the
# repository's root).
# fresh_venv DIR SPEC...: (re)creates the venv DIR and pip-installs SPEC into it, installing
# Debian's python3-venv first where Python lacks venv or ensurepip.
fresh_venv() {
  local dir=$1
  shift
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    scripts/apt-install.sh python3-venv
  fi
  mkdir -p "$(dirname "$dir")"
  rm -rf "$dir"
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install -q --disable-pip-version-check "$@" >&2
}
