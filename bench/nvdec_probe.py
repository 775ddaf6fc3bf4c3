"""A short first device call's check (issue 25): what PyNvVideoCodec's demuxer, decoder and frames look like there,
and whether NVDEC's planes, converted by `frame_math` on the GPU, are OpenCV's decoded frames byte for byte.

    python bench/nvdec_probe.py VIDEO... > probe.txt
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(paths: list[str]) -> None:
    import cv2
    import numpy as np
    import PyNvVideoCodec as nvc  # noqa: N813
    import torch

    from haic_resources.video import frame_math as fm
    from haic_resources.video.single_pass import PassSettings, decode_pass
    from haic_resources.video.yuv_sources import NvdecSource

    print("torch", torch.__version__, torch.cuda.get_device_name(0))
    for path in paths:
        print("==", Path(path).name)
        try:
            demuxer = nvc.CreateDemuxer(filename=path)
            print(" demuxer:", [m for m in dir(demuxer) if not m.startswith("_")])
            print(" codec", demuxer.GetNvCodecId(), "chroma", demuxer.ChromaFormat(), "depth", demuxer.BitDepth(),
                  "colour", demuxer.ColorSpace(), demuxer.ColorRange(), "fps", demuxer.FrameRate(),
                  "tb", demuxer.GetTimebaseNum(), demuxer.GetTimebaseDen())
            print(" caps", nvc.GetDecoderCaps(gpuid=0, codec=demuxer.GetNvCodecId(), chromaformat=demuxer.ChromaFormat(),
                                               bitdepth=demuxer.BitDepth()))
            decoder = nvc.CreateDecoder(gpuid=0, codec=demuxer.GetNvCodecId(), cudacontext=0, cudastream=0,
                                        usedevicememory=True)
            for packet in demuxer:
                frames = decoder.Decode(packet)
                if frames:
                    f = frames[0]
                    t = torch.from_dlpack(f)
                    print(" frame:", [m for m in dir(f) if not m.startswith("_")][:40])
                    print(" dlpack", tuple(t.shape), t.stride(), t.dtype, t.device, "pts", f.getPTS())
                    break
            source = NvdecSource(path)
            capture = cv2.VideoCapture(path)
            n = equal = 0
            started = time.perf_counter()
            for batch in source.batches(32):
                rgb = fm.yuv420_to_rgb(batch.y, batch.u, batch.v, source.colour).cpu().numpy()
                for k in range(len(batch.times)):
                    ok, bgr = capture.read()
                    n += 1
                    equal += bool(ok) and np.array_equal(rgb[k][..., ::-1], bgr)
            rest = 0
            while capture.read()[0]:
                rest += 1
            print(f" NvdecSource frames {n} (OpenCV has {rest} more), equal to OpenCV's BGR: {equal}/{n}, "
                  f"{n / (time.perf_counter() - started):.0f} frames/s with the comparison")
            vpass = decode_pass(path, PassSettings(long_side=416), "cuda")
            print(" pass", vpass.reader, len(vpass.times), "cuts", vpass.cuts.cut_frames, "kept",
                  tuple(vpass.kept_frames.shape), {k: round(v, 3) for k, v in vpass.seconds.items()})
        except Exception:
            print(traceback.format_exc()[-2500:])


if __name__ == "__main__":
    main(sys.argv[1:])
