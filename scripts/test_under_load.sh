#!/usr/bin/env bash
# The suite with a CPU hog beside it: does any test still assume an idle machine? Not for CI.
#
#   scripts/test_under_load.sh [pytest arguments]     e.g. tests/test_daemon_operations.py
#
# Starts HAIC_LOAD_HOGS busy processes (default 8 per core: with the suite's own processes, a load
# of about 16-20 on a 2-core machine), then runs scripts/test.sh (the suite as CI runs it, one
# worker per core) with every wall-clock limit of the tests scaled by HAIC_TEST_TIME_SCALE (default
# 10; tests/timing.py). Prints the load average every minute and the slowest tests at the end;
# stops the hogs however it ends. A whole run takes about 2.5 hours on 2 cores (measured at load 14-19).
set -euo pipefail
cd "$(dirname "$0")/.."

hogs=${HAIC_LOAD_HOGS:-$((8 * $(nproc)))}
export HAIC_TEST_TIME_SCALE=${HAIC_TEST_TIME_SCALE:-10}
pids=()
stop() {
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT

monitor() {
  local nap
  trap 'kill $nap 2>/dev/null; exit 0' TERM
  while :; do
    sleep 60 & nap=$!
    wait $nap
    echo "[load] $(date +%T) load average $(cut -d' ' -f1-3 /proc/loadavg)"
  done
}

for _ in $(seq "$hogs"); do
  sh -c 'while :; do :; done' &
  pids+=($!)
done
monitor &
pids+=($!)
echo "[load] $hogs busy processes beside the suite, HAIC_TEST_TIME_SCALE=$HAIC_TEST_TIME_SCALE"
started=$(date +%s)
set +e
scripts/test.sh --durations=30 "$@"
status=$?
set -e
echo "[load] the suite exited $status after $(( $(date +%s) - started )) s"
exit "$status"
