#!/usr/bin/env bash
# The test command of the README (and of CI: .ci/run calls exactly this).
# Installs what the tests need on a fresh Debian/Ubuntu machine, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: Chromium for the UI test, PostgreSQL for the production-profile test.
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

source scripts/uv_bootstrap.sh
# The annotation extra (Label Studio's SDK: 0.7 s) and the Label Studio server in its own venv (7 s from
# an empty uv cache) for tests/test_annotation_tool.py (marker annotation_tool, 70 s on one worker): cheap
# beside the ~12 min suite, so CI runs it (README "In Label Studio").
uv sync --frozen --extra test --extra annotation --quiet
bash scripts/label_studio_install.sh >/dev/null

set +e
# -n auto --dist loadfile: one worker per core, each test module whole on one worker (module-scoped
# servers stay shared); the daemon and UI tests spend much of their time waiting on intervals.
uv run --frozen --extra test --extra annotation pytest -p no:cacheprovider -q -rfE -n auto --dist loadfile "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure of the suite" >&2
  exit 1
fi
exit "$status"
