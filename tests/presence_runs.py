"""The real job up to human_presence on a few shared test videos, with the small ONNX pose models:
the stage tests that compare two ways of reaching the same presence decisions (the GPU path against the
CPU path, the batched backend against the per-clip one) run both sides through this."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey

from haic_assets.definitions import build_definitions
from tests.helpers import dagster_instance, run_partition
from tests.test_curation_real_media import land_listing

UP_TO_PRESENCE = [AssetKey(k) for k in ("raw_metadata", "metadata_filtered", "videos", "clips", "human_presence",
                                                     "person_detections")]


def run_up_to_presence(home: Path, monkeypatch, media_dir: Path, models_dir: Path, files: list[str],
                       settings: dict[str, str]) -> dict:
    """Land `files` (of the shared media) as one partition of `home`, run the job up to human_presence with
    ONNX Runtime, YOLOX-nano and a random RTMPose-t, and the HAIC_ `settings`; return the metadata of
    human_presence's materialization."""
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.setenv("HAIC_ALLOWED_MEDIA_ROOTS", str(media_dir / "videos"))
    monkeypatch.setenv("HAIC_POSE_ENGINE", "onnxruntime")
    monkeypatch.setenv("HAIC_POSE_DETECTOR_MODEL", str(models_dir / "yolox_nano.onnx"))
    monkeypatch.setenv("HAIC_POSE_MODEL", str(models_dir / "rtmpose_t_random.onnx"))
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    partition = land_listing(home, "shared", media_dir / "videos", files)
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, partition, selection=UP_TO_PRESENCE).success
        event = instance.get_latest_materialization_event(AssetKey("human_presence"))
        return event.asset_materialization.metadata
