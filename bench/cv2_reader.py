"""OpenCV's CPU decoder in the frame readers' shape, for the device (no PyAV there): the CPU reference
and NVDEC's fallback in bench/bench_gpu_human_filters.py. A module of its own so that decoder worker
processes can import it (functions travel to them by name)."""

from __future__ import annotations

from haic_resources.video.frame_reader import FrameSample, SampledFrame, resized_size


def cv2_read(path, timestamps, start_s, end_s, long_side):
    """CPU reference decoder for a machine without PyAV: OpenCV, nearest frame at the stream's rate."""
    import cv2
    cap = cv2.VideoCapture(str(path))
    fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = [min(max(int(round(t * fps)), 0), count - 1) for t in timestamps]
    first, images, index = min(wanted), {}, 0
    if first > 0:
        cap.set(cv2.CAP_PROP_POS_FRAMES, first)
        index = first
    while index <= max(wanted):
        ok = cap.grab()
        if not ok:
            break
        if index in wanted:
            ok, bgr = cap.retrieve()
            h, w = bgr.shape[:2]
            size = resized_size(w, h, long_side)
            images[index] = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)[:, :, ::-1].copy()
        index += 1
    cap.release()
    if not images:
        raise ValueError(f"{path}: OpenCV decoded nothing")
    last = max(images)
    frames = [SampledFrame(t, i / fps, images.get(i, images[last]), w, h) for t, i in zip(timestamps, wanted)]
    return FrameSample(frames, w, h, len(images))
