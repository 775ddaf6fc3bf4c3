#!/bin/sh
# One device call (see bench/GPU_NOTES.md): run from the carried folder (.gpu) on the H200 machine.
# Unpacks the carried wheels, then: the box diagnosis, the GPU tests, the throughput bench; all to $OUT.
# Usage: sh bench/device_run.sh [bench args...]
cd "$(dirname "$0")/.." || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD HAIC_TEST_MEDIA=$PWD/shared/media HAIC_TEST_MODELS=$PWD/shared/models
for w in whl/*; do python3 -m zipfile -e "$w" /tmp/site || exit 1; done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,utilization.gpu,memory.used --format=csv > "$OUT/smi.txt"
python3 -c "import torch, PyNvVideoCodec, onnx2torch; print(torch.__version__, torch.cuda.get_device_name(0))"
timeout 80 python3 bench/gpu_box_diagnosis.py --media shared/media --models shared/models --out "$OUT/box.json" > "$OUT/box.log" 2>&1
grep -v Warning "$OUT/box.log" | grep -v "x = x" | tail -8
timeout 110 python3 -m pytest -q -m gpu tests/test_pose_batched.py -p no:cacheprovider -s > "$OUT/pytest.log" 2>&1
grep -E "passed|failed|worst|Error|assert|gpu'" "$OUT/pytest.log" | tail -15
timeout "${BENCH_S:-360}" python3 bench/bench_gpu_human_filters.py --media shared/media --models shared/models \
  --out "$OUT/gpu.json" "$@" > "$OUT/bench.log" 2>&1
grep -v Warning "$OUT/bench.log" | grep -v "x = x" | grep -v "^verdicts" | cut -c1-420 | tail -30
