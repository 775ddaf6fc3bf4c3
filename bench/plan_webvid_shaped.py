"""WebVid-shaped media for the plan's CPU-side inputs: the shared videos re-encoded to WebVid-10M's
preview shape (596 x 336 H.264 yuv420p, about 18 s a video).

The shared videos are 2-30 s each; they are joined in manifest order into 18 s videos (each at the
frame rate of its first source), so a join is a real scene cut, and re-encoded with x264 (CRF 28,
preset veryfast). The same recipe as make_webvid_shaped.py in bench (the GPU issue's workload), which
bench_plan_inputs.py runs instead when it is in the tree, so that the CPU and GPU figures are
measured on the same media.

    .venv/bin/python bench/plan_webvid_shaped.py --media ../shared/media --out /tmp/webvid_shaped
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av

from measure import bench_parser  # bench/, this script's folder

WIDTH, HEIGHT = 596, 336


def source_frames(path: Path):
    """(frame rate, the frames at 596 x 336 yuv420p) of one video."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25).limit_denominator(1001)
        return rate, [f.reformat(width=WIDTH, height=HEIGHT, format="yuv420p").to_ndarray()
                      for f in container.decode(stream)]


def write_h264(path: Path, frames, rate: Fraction, crf: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for k, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
            frame.pts, frame.time_base = k, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def make(media: Path, out: Path, seconds: float = 18.0, crf: int = 28) -> list[dict]:
    """Write out/webvid_NN.mp4 and out/manifest.json; the videos' descriptions."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((media / "manifest.json").read_text())
    sources = [media / "videos" / Path(v["file"]).name for v in manifest["videos"]]
    written: list[dict] = []
    frames, rate, joined = [], None, []
    for source in (s for s in sources if s.is_file()):
        source_rate, pending = source_frames(source)
        while pending:
            rate = rate or source_rate
            room = round(seconds * rate) - len(frames)
            frames, pending = frames + pending[:room], pending[room:]
            joined.append(source.name)
            if len(frames) >= round(seconds * rate):
                name = f"webvid_{len(written):02d}.mp4"
                write_h264(out / name, frames, rate, crf)
                written.append({"file": name, "fps": float(rate), "frames": len(frames), "sources": joined})
                frames, rate, joined = [], None, []
    (out / "manifest.json").write_text(json.dumps({"webvid_shaped": written}, indent=1))
    return written


def main() -> None:
    parser = bench_parser(__doc__, "media", "out")
    parser.add_argument("--seconds", type=float, default=18.0)
    parser.add_argument("--crf", type=int, default=28)
    args = parser.parse_args()
    written = make(args.media, args.out, args.seconds, args.crf)
    print(f"{len(written)} WebVid-shaped videos in {args.out}")


if __name__ == "__main__":
    main()
