#!/usr/bin/env bash
# The Label Studio server for HAICBench's human steps, in its own venv (.venv-label-studio/): its pins
# (openai<2, pyarrow 24, pytz 2022, setuptools>=83) cannot live beside ours, and sentry-sdk 3.x stops it
# at start. The platform talks to it through the SDK of the `annotation` extra only.
#
#   bash scripts/label_studio_install.sh            install deploy/label-studio/requirements.txt (hash-pinned)
#   bash scripts/label_studio_install.sh --compile  re-pin it from requirements.in
#
# Then: LABEL_STUDIO_BASE_DATA_DIR=... .venv-label-studio/bin/label-studio start (README: "Label Studio").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/uv_bootstrap.sh
if [ "${1:-}" = "--compile" ]; then
  uv pip compile deploy/label-studio/requirements.in --python-version 3.11 --generate-hashes -q \
    -o deploy/label-studio/requirements.txt --custom-compile-command "bash scripts/label_studio_install.sh --compile"
  exit 0
fi
venv="${HAIC_LABEL_STUDIO_VENV:-.venv-label-studio}"
[ -x "$venv/bin/python" ] || uv venv -q --python 3.11 "$venv"
VIRTUAL_ENV="$venv" uv pip sync -q --require-hashes deploy/label-studio/requirements.txt
# (not `label-studio --version`: it asks PyPI for the latest release and waits on a network it may not have)
"$venv/bin/python" -c "import label_studio, sentry_sdk; assert sentry_sdk.VERSION < \"3\"" || { echo "label-studio in $venv does not import" >&2; exit 1; }
echo "Label Studio 1.23.2 in $venv"
