"""Cut the window [start_s, end_s) of a video into its own MP4, frame-accurately.

Stream copy can only start on a keyframe, so the clip would begin early. We seek to the
keyframe before the window, decode, drop frames before `start_s`, and re-encode exactly the
frames inside the window (libx264 when PyAV's FFmpeg has it, else mpeg4), keeping the size and
each frame's own timing (so variable frame rate survives). A source with a display rotation
(a phone's portrait video stores landscape pixels plus a display matrix) is cut upright: the
pixels are turned, since a clip's consumers may ignore the matrix. Runs in a killable child process.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from haic_resources.storage.files import TEMP_PREFIX
from haic_resources.video.av_open import open_input
from haic_resources.video.item_error import ItemError

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_CRF = 18  # visually lossless for libx264; the clip feeds pose models and captioners
CLIP_FILE_MODE = 0o640  # stored media is not world-readable
_EPS_S = 1e-6  # frame times are compared with this slack against float window edges


class ClipCutError(ItemError):
    """The clip could not be cut; `reason` says why in one line."""


@dataclass(frozen=True)
class CutClip:
    path: Path
    start_s: float  # time of the first frame written, in the source's clock
    end_s: float  # end of the last frame written
    frame_count: int
    width: int  # as written (upright: a rotated source's sides are swapped)
    height: int
    fps: float
    codec: str
    size_bytes: int
    rotation_deg: int = 0  # the source's display rotation that was applied (counter-clockwise)


def choose_encoder() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def cut_clip(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    start_s: float,
    end_s: float,
    *,
    codec: str | None = None,
    crf: int = DEFAULT_CRF,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> CutClip:
    """Write the frames of `src` whose time t satisfies start_s <= t < end_s to `dst` (MP4).

    `dst` appears atomically: written to a temporary name of its own (two runs cutting the same
    clip never share one), then renamed. Raises `ClipCutError`.
    """
    if not end_s > start_s >= 0:
        raise ClipCutError(f"empty or negative window [{start_s}, {end_s})")
    tmp = temporary_name_for(Path(dst))
    args = (str(src), str(dst), float(start_s), float(end_s), codec, crf, str(tmp))
    if timeout_s is None:
        return cut_clip_in_process(*args)
    from haic_resources.video.isolation import call_isolated_or_raise

    try:
        return call_isolated_or_raise(ClipCutError, "clip cut", cut_clip_in_process, *args, timeout_s=timeout_s)
    finally:
        tmp.unlink(missing_ok=True)  # left behind by a killed child


def temporary_name_for(dst: Path) -> Path:
    """A unique name beside `dst` for writing it (hidden from store listings by TEMP_PREFIX)."""
    return dst.with_name(f"{TEMP_PREFIX}{dst.name}.{uuid.uuid4().hex}.mp4")


def _upright(frame, rotation_deg: int):
    """The frame turned by its display rotation (counter-clockwise degrees, as PyAV reads it)."""
    import av
    import numpy as np

    if rotation_deg == 0:
        return frame
    image = np.rot90(frame.to_ndarray(format="rgb24"), k=rotation_deg // 90)
    turned = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    turned.pts, turned.time_base = frame.pts, frame.time_base
    return turned


def frame_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of a cut clip, from its header (clips are written upright: no rotation)."""
    with open_input(str(path)) as container:
        context = container.streams.video[0].codec_context
        return int(context.width), int(context.height)


def display_rotation_deg(frame) -> int:
    """A decoded frame's display rotation, counter-clockwise, as 0, 90, 180 or 270."""
    return int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4 * 90


def cut_clip_in_process(src: str, dst: str, start_s: float, end_s: float,
                        codec: str | None = None, crf: int = DEFAULT_CRF, tmp: str | None = None) -> CutClip:
    import av

    codec = codec or choose_encoder()
    tmp = Path(tmp) if tmp else temporary_name_for(Path(dst))
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        source = open_input(src)
    except av.error.FFmpegError as exc:
        raise ClipCutError(f"cannot open source: {exc.strerror or type(exc).__name__}")
    written = 0
    first_t = last_end_t = None
    try:
        with source:
            if not source.streams.video:
                raise ClipCutError("no video stream")
            vin = source.streams.video[0]
            vin.thread_type = "AUTO"
            time_base = Fraction(vin.time_base.numerator, vin.time_base.denominator)
            start_pts = vin.start_time or 0
            rate = vin.average_rate or vin.guessed_rate or Fraction(25)
            width, height = vin.codec_context.width, vin.codec_context.height
            # backward=True lands on the keyframe at or before the window start.
            source.seek(start_pts + int(start_s / time_base), stream=vin, backward=True,
                        any_frame=False)
            with av.open(str(tmp), "w", format="mp4") as sink:
                vout = rotation = None
                for frame in source.decode(vin):
                    if frame.pts is None:
                        continue
                    t = float((frame.pts - start_pts) * time_base)
                    if t < start_s - _EPS_S:
                        continue
                    if t >= end_s - _EPS_S:
                        break
                    if vout is None:  # set up on the first frame: its rotation decides the size
                        rotation = display_rotation_deg(frame)
                        if rotation in (90, 270):
                            width, height = height, width
                        vout = _add_video_stream(sink, codec, rate, width, height, time_base, crf)
                    if first_t is None:
                        first_t, first_pts = t, frame.pts
                    step = frame.duration or round(1 / (rate * time_base))
                    last_end_t = t + float(step * time_base)
                    out = _upright(frame, rotation).reformat(format=vout.pix_fmt)
                    out.pts = frame.pts - first_pts
                    out.time_base = time_base
                    out.pict_type = av.video.frame.PictureType.NONE  # let the encoder choose
                    for packet in vout.encode(out):
                        sink.mux(packet)
                    written += 1
                if vout is not None:
                    for packet in vout.encode():
                        sink.mux(packet)
        if written == 0:
            raise ClipCutError(f"no frames in window [{start_s:.3f}, {end_s:.3f}) s")
        os.chmod(tmp, CLIP_FILE_MODE)
        os.replace(tmp, dst)
    except av.error.FFmpegError as exc:
        raise ClipCutError(f"cutting failed: {exc.strerror or type(exc).__name__}")
    finally:
        tmp.unlink(missing_ok=True)
    return CutClip(
        path=Path(dst), start_s=first_t, end_s=last_end_t, frame_count=written, width=width,
        height=height, fps=float(rate), codec=codec, size_bytes=os.path.getsize(dst), rotation_deg=rotation or 0,
    )


def _add_video_stream(sink, codec: str, rate, width: int, height: int, time_base: Fraction, crf: int):
    # A plain rate for the encoder (an average like 3840000/239239 upsets the muxer);
    # frame timing itself comes from the source pts.
    vout = sink.add_stream(codec, rate=Fraction(rate).limit_denominator(1001))
    vout.width, vout.height = width, height
    # 4:2:0 needs even sizes; keep odd-sized sources at their size in 4:4:4.
    vout.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    # Encoder and stream in the source's time base: each frame keeps its own time
    # (VFR-safe); a 1/fps codec clock would merge frames of an irregular stream.
    vout.time_base = time_base
    vout.codec_context.time_base = time_base
    if codec == "libx264":
        vout.options = {"crf": str(crf), "preset": "veryfast"}
    else:
        vout.bit_rate = max(1_000_000, width * height * 4)
    return vout
