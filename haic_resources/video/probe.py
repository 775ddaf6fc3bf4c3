"""Probe a video file (container, codec, size, frame rate, VFR, duration, frame count) safely.

Web video is hostile input: a truncated upload, an HTML error page saved as ``.mp4`` or a header
that claims a 100000-pixel frame must become a clear error for that one item, never a hang or a
crash of the whole partition. So `probe_video` runs the probe in a killable child process
(haic_resources.video.isolation), and the videos stage runs it through `run_isolated`. Its
limits and thresholds are one `ProbeLimits`.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from haic_resources.video.av_open import open_input
from haic_resources.video.isolation import call_isolated_or_raise
from haic_resources.video.item_error import ItemError

DEFAULT_PROBE_TIMEOUT_S = 30.0
# Decoders of still images: a PNG renamed .mp4 opens as a one-frame "video" of 0.04 s.
IMAGE_CODECS = frozenset({"png", "apng", "bmp", "gif", "tiff", "webp", "jpegls", "jpeg2000", "qoi", "pam", "pbm",
                          "pgm", "ppm", "pgmyuv", "sgi", "targa", "xbm", "xpm", "xwd", "dpx", "exr", "hdr", "pcx",
                          "photocd", "sunrast", "jpegxl", "avif"})
MIN_FRAMES = 2  # fewer is a picture, not a video


class VideoProbeError(ItemError):
    """The file is not a video we can use; `reason` says why in one line."""


@dataclass(frozen=True)
class ProbeLimits:
    """Paper-independent safety limits and thresholds of a probe (the defaults are the platform's)."""

    max_side_px: int = 16384  # larger frames are header corruption, not video we can use
    vfr_window_s: float = 10.0  # look at packet timestamps over this much of the start of the video
    vfr_tolerance: float = 0.10  # a pts step this far from the median step means VFR
    full_scan_max_bytes: int = 512 * 1024 * 1024  # count packets exactly below this file size


@dataclass(frozen=True)
class VideoProbe:
    path: str
    container: str  # FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # FFmpeg decoder name, e.g. "h264"
    width: int
    height: int
    fps: float  # average frame rate (frames / duration)
    is_vfr: bool  # packet pts steps vary over the first `ProbeLimits.vfr_window_s` seconds
    duration_s: float
    frame_count: int
    frame_count_exact: bool
    frame_count_source: str  # "packets" (counted), "header" or "estimated" (duration * fps)
    has_audio: bool
    size_bytes: int
    pix_fmt: str | None = None
    rotation_deg: int = 0  # display rotation (counter-clockwise, 0/90/180/270): portrait phone video is 90 or 270


# --------------------------------------------------------------------------------------------
# Probing


def probe_video(path: str | os.PathLike, timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
                limits: ProbeLimits = ProbeLimits()) -> VideoProbe:
    """Describe the video at `path`, or raise `VideoProbeError` with a one-line reason.

    Runs in a child process that is killed after `timeout_s`, so a corrupt file cannot hang the
    caller. The frame count is exact (demuxed packets are counted) for files up to
    `limits.full_scan_max_bytes`; above that it comes from the header or is estimated, and
    `frame_count_source` says which.
    """
    path = Path(path)
    # Cheap checks first, in this process: no need to start a child for a missing/empty file.
    if not path.is_file():
        raise VideoProbeError(f"not a file: {path.name}")
    if path.stat().st_size == 0:
        raise VideoProbeError("empty file: 0 bytes")
    return call_isolated_or_raise(
        VideoProbeError, "probe", probe_video_in_process, str(path), timeout_s=timeout_s,
        timeout_hint=" (corrupt or hostile file?)", limits=limits,
    )


def probe_video_in_process(path: str, limits: ProbeLimits = ProbeLimits()) -> VideoProbe:
    """The probe itself, without a time limit (use `probe_video` unless already isolated)."""
    import av

    size_bytes = os.path.getsize(path)
    if size_bytes == 0:
        raise VideoProbeError("empty file: 0 bytes")
    try:
        container = open_input(path)
    except av.error.InvalidDataError:
        raise VideoProbeError("not a readable media file: FFmpeg found invalid data "
                              "(truncated, corrupt or not a video)")
    except av.error.FFmpegError as exc:
        raise VideoProbeError(f"cannot open media file: {exc.strerror or type(exc).__name__}")
    with container:
        if not container.streams.video:
            if container.streams.audio:
                raise VideoProbeError("audio-only file: no video stream")
            raise VideoProbeError("no video stream")
        stream = container.streams.video[0]
        cc = stream.codec_context
        codec_name = stream.codec_context.name if cc is not None else None
        if cc is None or not codec_name:
            raise VideoProbeError(f"unsupported video codec (no decoder for codec id "
                                  f"{getattr(stream, 'codec_tag', '?')!r})")
        if codec_name in IMAGE_CODECS or container.format.name in ("image2", "image2pipe") \
                or container.format.name.endswith("_pipe"):
            raise VideoProbeError(f"a still image ({codec_name} in {container.format.name}), not a video")
        width, height = int(cc.width or 0), int(cc.height or 0)
        if width <= 0 or height <= 0:
            raise VideoProbeError(f"implausible resolution {width}x{height}: no frame size in "
                                  "header")
        if width > limits.max_side_px or height > limits.max_side_px:
            raise VideoProbeError(f"implausible resolution {width}x{height} "
                                  f"(limit {limits.max_side_px} px per side)")

        time_base = stream.time_base or Fraction(1, 1000)
        start_pts = stream.start_time or 0
        full_scan = size_bytes <= limits.full_scan_max_bytes
        pts_window: list[int] = []
        n_packets = 0
        last_end_pts = None
        window_end = start_pts + int(limits.vfr_window_s / float(time_base))
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # flush packet at EOF
                    continue
                n_packets += 1
                if packet.pts is not None:
                    if packet.pts <= window_end:
                        pts_window.append(packet.pts)
                    end = packet.pts + (packet.duration or 0)
                    last_end_pts = end if last_end_pts is None else max(last_end_pts, end)
                if not full_scan and packet.pts is not None and packet.pts > window_end:
                    break
        except av.error.FFmpegError as exc:
            raise VideoProbeError(f"corrupt stream: demuxing failed after {n_packets} packets "
                                  f"({exc.strerror or type(exc).__name__})")
        if n_packets == 0:
            raise VideoProbeError("no video packets: file is truncated or empty")
        if last_end_pts is None:
            raise VideoProbeError(f"a raw {codec_name} elementary stream without timestamps ({container.format.name} "
                                  "demuxer, no container): remux it into MP4 or MKV")

        declared = int(stream.frames or 0)
        if full_scan and declared and n_packets < declared:
            raise VideoProbeError(f"truncated file: header declares {declared} frames but only "
                                  f"{n_packets} could be read")

        rotation_deg = _check_decodes(container, stream, codec_name)

        duration_s = _duration_s(container, stream, start_pts, last_end_pts, full_scan)
        is_vfr = _is_vfr(pts_window, limits.vfr_tolerance)
        if full_scan:
            frame_count, exact, source = n_packets, True, "packets"
        elif declared:
            frame_count, exact, source = declared, False, "header"
        else:
            frame_count, exact, source = 0, False, "estimated"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if full_scan and duration_s > 0:
            fps = frame_count / duration_s  # the true average, right for VFR too
        if source == "estimated":
            frame_count = round(duration_s * fps)
        if not is_vfr and rate:
            fps = float(rate)  # CFR: the nominal rate (e.g. 30000/1001) is the exact one
        if frame_count < MIN_FRAMES:
            raise VideoProbeError(f"{frame_count} frame(s): a picture, not a video (at least {MIN_FRAMES})")
        return VideoProbe(
            path=path,
            container=container.format.name,
            codec=codec_name,
            width=width,
            height=height,
            fps=fps,
            is_vfr=is_vfr,
            duration_s=duration_s,
            frame_count=frame_count,
            frame_count_exact=exact,
            frame_count_source=source,
            has_audio=bool(container.streams.audio),
            size_bytes=size_bytes,
            pix_fmt=cc.format.name if cc.format is not None else None,
            rotation_deg=rotation_deg,
        )


def _check_decodes(container, stream, codec_name: str) -> int:
    """Decode the first frame: a stream we cannot decode is unusable whatever its header says.
    Returns its display rotation (the display matrix FFmpeg attaches to decoded frames)."""
    import av

    from haic_resources.video.clip_cut import display_rotation_deg

    try:
        container.seek(0, stream=stream)
        for frame in container.decode(stream):
            return display_rotation_deg(frame)
    except av.error.FFmpegError as exc:
        raise VideoProbeError(f"video stream ({codec_name}) cannot be decoded: "
                              f"{exc.strerror or type(exc).__name__}")
    raise VideoProbeError(f"video stream ({codec_name}) has no decodable frame")


def _duration_s(container, stream, start_pts: int, last_end_pts: int | None,
                full_scan: bool) -> float:
    time_base = stream.time_base
    if full_scan and last_end_pts is not None and time_base:
        return float((last_end_pts - start_pts) * time_base)
    if stream.duration and time_base:
        return float(stream.duration * time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return 0.0


def _is_vfr(pts: Sequence[int], tolerance: float) -> bool:
    """Variable frame rate: some pts step differs from the median step by more than
    `tolerance` of it (and by more than one tick, which is mere rounding in coarse time bases)."""
    if len(pts) < 3:
        return False
    ordered = sorted(pts)
    steps = [b - a for a, b in zip(ordered, ordered[1:]) if b > a]
    if len(steps) < 2:
        return False
    median = statistics.median(steps)
    allowed = max(1.0, tolerance * median)
    return any(abs(step - median) > allowed for step in steps)
