#!/bin/sh
# One device call (see bench/GPU_NOTES.md): run from the carried folder (.gpu) on the H200 machine.
# Unpacks the carried wheels, then: the throughput bench (args passed on), the box diagnosis, the GPU
# tests; everything to $OUT as it goes. Usage: sh bench/device_run.sh [bench args...]
cd "$(dirname "$0")/.." || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD HAIC_TEST_MEDIA=$PWD/shared/media HAIC_TEST_MODELS=$PWD/shared/models
for w in whl/*; do python3 -m zipfile -e "$w" /tmp/site || exit 1; done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,utilization.gpu,memory.used --format=csv > "$OUT/smi.txt"
timeout "${BENCH_S:-80}" python3 bench/bench_gpu_human_filters.py --media shared/media --models shared/models \
  --out "$OUT/gpu.json" "$@" > "$OUT/bench.log" 2>&1
grep -v Warning "$OUT/bench.log" | grep -v "x = x" | grep -v "^verdicts\|^{" | cut -c1-400 | tail -12
timeout "${BOX_S:-30}" python3 bench/gpu_box_diagnosis.py --media shared/media --models shared/models \
  --out "$OUT/box.json" > "$OUT/box.log" 2>&1
grep "^tf32" "$OUT/box.log" | cut -c1-700
timeout "${TESTS_S:-50}" python3 -m pytest -q -m gpu tests/test_pose_batched.py -p no:cacheprovider -s -x \
  > "$OUT/pytest.log" 2>&1
grep -E "passed|failed|worst|Error|assert|'gpu'" "$OUT/pytest.log" | cut -c1-400 | tail -12
