#!/bin/sh
# Issue 25's device calls (bench/GPU_NOTES.md). Run from the carried copy of this worktree (.gpuwork) on the GPU
# machine: sh bench/device_issue25.sh MODE. Everything goes to $OUT as it happens.
#   probe  the first, short call: unpack the carried packages, versions, bench/nvdec_probe.py, imports
#   deps   unpack the stage's packages (carried in ../.whl) into /tmp/site, for the next call on the same machine
#   main   the bench (bench/bench_issue25.py), the GPU tests, the stage run (bench/stage_run_issue25.py)
#   pyav   after `deps`: the stage run and the PyAV-dependent bench parts (the CPU path beside the GPU path)
# Packages: deps/*.tar.xz here (PyNvVideoCodec without its CUDA 12 module, onnx2torch, scenedetect; torchcodec;
# pandas when the device's is older) and ../.whl/stage_deps.tar.xz (Dagster, DuckDB, PyAV, boto3, ...: too big to
# travel with the media, so a call of its own before `main`, on the same warm machine).
cd "$(dirname "$0")/.." || exit 1
mode=${1:-probe}
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD HAIC_TEST_MEDIA=$PWD/shared/media HAIC_TEST_MODELS=$PWD/shared/models
mkdir -p /tmp/site
for t in deps/*.tar.xz; do [ -f "$t" ] && tar xJf "$t" -C /tmp/site; done
[ -d /tmp/site/dagster ] || for t in ../.whl/*.tar.xz; do [ -f "$t" ] && tar xJf "$t" -C /tmp/site; done
# torchcodec finds FFmpeg 8 by its usual names: PyAV's copies, under them
mkdir -p /tmp/ffmpeg8
for lib in avutil avcodec avformat avdevice avfilter swscale swresample; do
  f=$(ls /tmp/site/av.libs/lib$lib-*.so.* 2>/dev/null | head -1)
  [ -n "$f" ] && ln -sf "$f" "/tmp/ffmpeg8/lib$lib.so.$(basename "$f" | sed 's/.*\.so\.\([0-9]*\).*/\1/')"
done
export LD_LIBRARY_PATH=/tmp/ffmpeg8:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used --format=csv > "$OUT/smi.txt" 2>&1
python3 -c "
import importlib
for m in ('torch','numpy','pandas','pyarrow','cv2','av','duckdb','dagster','scenedetect','PyNvVideoCodec','onnx2torch','onnxruntime'):
    try:
        x = importlib.import_module(m); print(m, getattr(x, '__version__', '?'), getattr(x, '__file__', '')[:60])
    except Exception as e:
        print(m, 'MISSING', type(e).__name__, str(e)[:120])
" > "$OUT/versions.txt" 2>&1
cat "$OUT/smi.txt" "$OUT/versions.txt"

case $mode in
probe)
  timeout 150 python3 bench/nvdec_probe.py shared/media/videos/*.mp4 webvid_shaped/webvid_00.mp4 > "$OUT/probe.txt" 2>&1
  grep -v "demuxer:\|frame:" "$OUT/probe.txt" | cut -c1-300 | tail -40
  timeout 60 python3 -c "
from haic_resources.video.single_pass import PassSettings, decode_pass
print(decode_pass('webvid_shaped/webvid_00.mp4', PassSettings(long_side=416), 'cpu').cuts.cut_frames)
import haic_assets.definitions; print('definitions import')" 2>&1 | tail -4
  timeout 60 python3 -c "
import sys; sys.path.insert(0, 'bench'); import issue25_checks as c
print(c.torchcodec_probe(['webvid_shaped/webvid_00.mp4']))" 2>&1 | tail -3 | cut -c1-700
  ;;
deps)
  ls /tmp/site | wc -l; python3 -c "import dagster, duckdb, av; print('stage packages ready')"
  ;;
main)
  python3 -c "import av" 2>/dev/null || echo "NO PyAV here: the stage's packages did not survive (new machine)"
  timeout 60 python3 bench/nvdec_probe.py shared/media/videos/mmaction2_basketball_2p.mp4 \
    shared/media/videos/sam2_dog_1p.mp4 webvid_shaped/webvid_00.mp4 > "$OUT/probe.txt" 2>&1
  grep -v "demuxer:\|frame:\|^Error importing\|^System\|^Python version\|^LD_LIBRARY" "$OUT/probe.txt" | cut -c1-300 | tail -14
  BENCH_PHASES=${BENCH_PHASES:-checks,cuts,limit,b,a}
  timeout "${BENCH_S:-420}" python3 bench/bench_issue25.py --media shared/media --webvid webvid_shaped \
    --models shared/models --out "$OUT/issue25.json" --phases "$BENCH_PHASES" > "$OUT/bench.log" 2>&1
  tail -30 "$OUT/bench.log" | cut -c1-600
  timeout "${TESTS_S:-90}" python3 -m pytest -q -m gpu tests/test_gpu_decode.py tests/test_pose_batched.py \
    -p no:cacheprovider -rfEs > "$OUT/pytest.log" 2>&1
  grep -E "passed|failed|FAILED|ERROR|SKIPPED" "$OUT/pytest.log" | cut -c1-300 | tail -12
  if [ -n "${STAGE_S:-}" ]; then
    timeout "$STAGE_S" python3 bench/stage_run_issue25.py --media shared/media --webvid webvid_shaped \
      --models shared/models --out "$OUT/stage.json" > "$OUT/stage.log" 2>&1
    tail -15 "$OUT/stage.log" | cut -c1-600
  fi
  ;;
pyav)
  # the parts that need PyAV and Dagster (unpacked by `deps` on this machine): the stage run first, then the
  # bench phases with the CPU path beside the GPU path, then the GPU tests
  python3 -c "import av, dagster" || exit 1
  timeout "${STAGE_S:-200}" python3 bench/stage_run_issue25.py --media shared/media --webvid webvid_shaped \
    --models shared/models --out "$OUT/stage.json" > "$OUT/stage.log" 2>&1
  tail -12 "$OUT/stage.log" | cut -c1-700
  timeout "${BENCH_S:-250}" python3 bench/bench_issue25.py --media shared/media --webvid webvid_shaped \
    --models shared/models --out "$OUT/issue25_pyav.json" --phases "${BENCH_PHASES:-b,checks}" > "$OUT/bench_pyav.log" 2>&1
  tail -25 "$OUT/bench_pyav.log" | cut -c1-600
  timeout "${TESTS_S:-80}" python3 -m pytest -q -m gpu tests/test_gpu_decode.py -p no:cacheprovider -rfEs \
    > "$OUT/pytest_pyav.log" 2>&1
  grep -E "passed|failed|FAILED|ERROR|SKIPPED" "$OUT/pytest_pyav.log" | cut -c1-300 | tail -12
  ;;
esac
