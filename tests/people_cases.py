"""New cases for the people filters, made at test time from the real clips of ../shared/media (never
committed): a close-up of two hands, and people standing behind a table.

- `cut_close_up`: a window of a real clip cropped to a region and written as its own MP4, the way a
  close-up shot of a video looks to the pipeline (sam2_coffee_torso_hands.mp4 cropped to its hands).
- `behind_table`: a frame with a real table in front of its people: the white table top of the coffee
  clip pasted over the frame from a given row down, hiding hips, legs and feet.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from haic_resources.video.clip_cut import choose_encoder
from haic_resources.video.frame_reader import read_frames_at

COFFEE = "sam2_coffee_torso_hands.mp4"  # 1280 x 720: torso and two hands pouring coffee at a white table
# Its two hands (the kettle's and the mug's) and the body between them, without the head: (x0, y0, x1, y1)
# as fractions of the frame.
HANDS = (0.1, 0.05, 0.95, 0.75)
# The table top alone (no hand, no mug): its left part, from its front edge down.
TABLE = (0.0, 0.68, 0.45, 1.0)


def crop(image: np.ndarray, region: tuple[float, float, float, float]) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = region
    # Even sides: what a 4:2:0 encoder needs.
    top, left = int(y0 * h), int(x0 * w)
    return np.ascontiguousarray(image[top:top + (int(y1 * h) - top) // 2 * 2, left:left + (int(x1 * w) - left) // 2 * 2])


def cut_close_up(src: Path, dst: Path, start_s: float, end_s: float, region: tuple[float, float, float, float],
                 fps: float = 10.0) -> Path:
    """`src`'s frames of [start_s, end_s) at `fps`, cropped to `region`, as an MP4 at `dst`."""
    import av

    times = list(np.arange(start_s, end_s, 1.0 / fps))
    frames = [crop(f.image, region) for f in read_frames_at(str(src), times, start_s, end_s).frames]
    height, width = frames[0].shape[:2]
    with av.open(str(dst), "w") as sink:
        stream = sink.add_stream(choose_encoder(), rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                sink.mux(packet)
        for packet in stream.encode():
            sink.mux(packet)
    return dst


def table_image(media_dir: Path) -> np.ndarray:
    """The coffee clip's white table top (RGB), from its front edge down."""
    return crop(read_frames_at(str(media_dir / "videos" / COFFEE), [1.0], 0.0, 9.5).frames[0].image, TABLE)


def behind_table(image: np.ndarray, table: np.ndarray, top: int) -> np.ndarray:
    """`image` with `table` stretched over its rows from `top` down (a table in front of its people)."""
    out = image.copy()
    h, w = image.shape[:2]
    out[top:] = cv2.resize(table, (w, h - top), interpolation=cv2.INTER_AREA)
    return out
