"""Make the WebVid-shaped workload (issue 25, workload b) from the shared videos.

WebVid-10M serves 596 × 336 H.264 previews of about 18 s. This re-encodes every shared video to 596 × 336
H.264 (yuv420p) and joins them, in manifest order, into videos of `--seconds` (~18 s): each output video runs
at the frame rate of its first source (its own frame rate), the following sources' frames appended at that
rate, so the joins are real scene cuts. Also writes the NVDEC limit table's inputs: one 1920 × 1080 and one
1280 × 720 H.264 video of `--limit-seconds` (a shared 720p video, scaled).

    python bench/make_webvid_shaped.py --media ../shared/media --out /tmp/webvid_shaped

Writes `<out>/webvid_NN.mp4`, `<out>/limit_1080p.mp4`, `<out>/limit_720p.mp4` and `<out>/manifest.json`.
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT = 596, 336


def frames_of(path: Path, width: int, height: int):
    """(rate, frames as yuv420p VideoFrames at width × height) of one source."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        out = [frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA").to_ndarray()
               for frame in container.decode(stream)]
    return Fraction(rate).limit_denominator(1001), out


def encode(path: Path, frames: list[np.ndarray], rate: Fraction, width: int, height: int, crf: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        stream.codec_context.time_base = 1 / rate
        for k, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
            frame.pts, frame.time_base = k, 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=18.0)
    ap.add_argument("--crf", type=int, default=28)
    ap.add_argument("--limit-seconds", type=float, default=10.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((args.media / "manifest.json").read_text())
    sources = [args.media / "videos" / Path(v["file"]).name for v in manifest["videos"]]
    sources = [s for s in sources if s.is_file()]
    written, group, rate, frames = [], [], None, []

    def flush():
        nonlocal group, rate, frames
        name = f"webvid_{len(written):02d}.mp4"
        encode(args.out / name, frames, rate, WIDTH, HEIGHT, args.crf)
        written.append({"file": name, "fps": float(rate), "frames": len(frames), "seconds": round(float(len(frames) / rate), 3),
                        "sources": group})
        group, rate, frames = [], None, []

    for source in sources:
        source_rate, source_frames = frames_of(source, WIDTH, HEIGHT)
        while source_frames:
            if rate is None:
                rate = source_rate
            room = int(round(args.seconds * rate)) - len(frames)
            take, source_frames = source_frames[:room], source_frames[room:]
            frames += take
            group.append(source.name)
            if len(frames) >= int(round(args.seconds * rate)):
                flush()
    if frames and len(frames) / rate >= 5.0:
        flush()
    limit = {}
    for name, (w, h) in {"limit_1080p.mp4": (1920, 1080), "limit_720p.mp4": (1280, 720)}.items():
        source_rate, source_frames = frames_of(args.media / "videos" / "sam2_juggle_1p.mp4", w, h)
        count = int(args.limit_seconds * source_rate)
        looped = (source_frames * (count // len(source_frames) + 1))[:count]
        encode(args.out / name, looped, source_rate, w, h, args.crf)
        limit[name] = {"width": w, "height": h, "frames": count, "fps": float(source_rate)}
    (args.out / "manifest.json").write_text(json.dumps({"webvid_shaped": written, "limit": limit}, indent=1))
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"{len(written)} WebVid-shaped videos, {sum(w['frames'] for w in written)} frames, {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
