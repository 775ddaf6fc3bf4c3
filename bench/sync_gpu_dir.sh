#!/bin/sh
# Copy this worktree's code into /work/main/.gpu (git-excluded there), the folder a device run carries.
set -e
dest=/work/main/.gpu
src=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$dest/haic_core" "$dest/haic_resources" "$dest/bench" "$dest/tests"
for d in haic_core haic_resources bench tests; do cp -r "$src/$d" "$dest/$d"; done
cp "$src/pyproject.toml" "$dest/"
find "$dest" -name __pycache__ -prune -exec rm -rf {} +
du -sh "$dest"
