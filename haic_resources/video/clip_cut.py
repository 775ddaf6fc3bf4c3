"""Cut the window [start_s, end_s) of a video into its own MP4, frame-accurately.

Stream copy can only start on a keyframe, so the clip would begin early. We seek to the
keyframe before the window, decode, drop frames before `start_s`, and re-encode exactly the
frames inside the window (libx264 when PyAV's FFmpeg has it, else mpeg4), keeping the size and
each frame's own timing (so variable frame rate survives). Runs in a killable child process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from haic_resources.video.av_open import open_input
from haic_resources.video.item_error import ItemError

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_CRF = 18  # visually lossless for libx264; the clip feeds pose models and captioners
_EPS_S = 1e-6  # frame times are compared with this slack against float window edges


class ClipCutError(ItemError):
    """The clip could not be cut; `reason` says why in one line."""


@dataclass(frozen=True)
class CutClip:
    path: Path
    start_s: float  # time of the first frame written, in the source's clock
    end_s: float  # end of the last frame written
    frame_count: int
    width: int
    height: int
    fps: float
    codec: str
    size_bytes: int


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

    `dst` appears atomically (written to a temporary name, then renamed). Raises `ClipCutError`.
    """
    if not end_s > start_s >= 0:
        raise ClipCutError(f"empty or negative window [{start_s}, {end_s})")
    args = (str(src), str(dst), float(start_s), float(end_s), codec, crf)
    if timeout_s is None:
        return cut_clip_in_process(*args)
    from haic_resources.video.isolation import call_isolated_or_raise

    try:
        return call_isolated_or_raise(ClipCutError, "clip cut", cut_clip_in_process, *args, timeout_s=timeout_s)
    finally:
        Path(str(dst) + ".part.mp4").unlink(missing_ok=True)  # left behind by a killed child


def cut_clip_in_process(src: str, dst: str, start_s: float, end_s: float,
                        codec: str | None = None, crf: int = DEFAULT_CRF) -> CutClip:
    import av

    codec = codec or choose_encoder()
    tmp = Path(dst + ".part.mp4")
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
                # A plain rate for the encoder (an average like 3840000/239239 upsets the muxer);
                # frame timing itself comes from the source pts below.
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
                for frame in source.decode(vin):
                    if frame.pts is None:
                        continue
                    t = float((frame.pts - start_pts) * time_base)
                    if t < start_s - _EPS_S:
                        continue
                    if t >= end_s - _EPS_S:
                        break
                    if first_t is None:
                        first_t, first_pts = t, frame.pts
                    step = frame.duration or round(1 / (rate * time_base))
                    last_end_t = t + float(step * time_base)
                    out = frame.reformat(format=vout.pix_fmt)
                    out.pts = frame.pts - first_pts
                    out.time_base = time_base
                    out.pict_type = av.video.frame.PictureType.NONE  # let the encoder choose
                    for packet in vout.encode(out):
                        sink.mux(packet)
                    written += 1
                for packet in vout.encode():
                    sink.mux(packet)
        if written == 0:
            raise ClipCutError(f"no frames in window [{start_s:.3f}, {end_s:.3f}) s")
        os.replace(tmp, dst)
    except av.error.FFmpegError as exc:
        raise ClipCutError(f"cutting failed: {exc.strerror or type(exc).__name__}")
    finally:
        tmp.unlink(missing_ok=True)
    return CutClip(
        path=Path(dst), start_s=first_t, end_s=last_end_t, frame_count=written, width=width,
        height=height, fps=float(rate), codec=codec, size_bytes=os.path.getsize(dst),
    )
