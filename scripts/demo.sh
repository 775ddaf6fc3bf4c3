#!/usr/bin/env bash
# The README's first command: install the pinned stack and run the main job on the bundled sample.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/uv_bootstrap.sh
uv sync --frozen --quiet
exec uv run --frozen haic demo
