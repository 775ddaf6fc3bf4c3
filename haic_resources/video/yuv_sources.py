"""Every frame of one video as 8-bit YUV 4:2:0 planes with its time: from NVDEC, or from PyAV on the CPU.

The GPU path decodes each video once, front to back, and needs the planes (not RGB) so that its own
integer colour conversion (`frame_math`) makes the pixels: the same bytes on the GPU and the CPU, in any
number of threads. (PyNvVideoCodec's own RGB output is not repeatable in threads: measured, bench/GPU_NOTES.md runs 6 and
issue 25; likely cause, from its library's symbols: the NV12→RGB kernels read the colour matrix from one
`__constant__` array, `matYuv2Rgb`, that `SetMatYuv2Rgb` rewrites for each decoder's stream.)

- `NvdecSource` (PyNvVideoCodec's demuxer and decoder, native NV12 output, device memory, on the calling
  thread's CUDA stream). Only what NVDEC decodes exactly: H.264, HEVC, VP9, AV1 at 8-bit 4:2:0 within
  the engine's limits (`GetDecoderCaps`); anything else raises `NvdecUnsupported` before decoding.
- `PyavSource` (the CPU): frames converted to yuv420p by swscale when stored otherwise (4:4:4, 10-bit).

Times are seconds on the video's clock, (pts − first pts) × time_base, as `scene_detect` times frames;
AVI (no presentation times) counts frames at the average rate, as `frame_reader` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from haic_resources.video.frame_math import Colour, nv12_planes

NVDEC_CODECS = ("H264", "HEVC", "VP9", "AV1")
COUNTED_CONTAINERS = ("avi",)


class NvdecUnsupported(Exception):
    """NVDEC cannot decode this file exactly (codec, chroma format, bit depth or size); `str` says which."""


@dataclass
class YuvBatch:
    times: list[float]
    y: object  # (N, H, W) uint8: numpy, or a torch tensor (on the GPU for NVDEC)
    u: object  # (N, ceil(H/2), ceil(W/2)) uint8
    v: object


class NvdecSource:
    reader = "nvdec"

    def __init__(self, path: str | os.PathLike, gpu_id: int = 0, stream=None):
        import PyNvVideoCodec as nvc  # noqa: N813
        import torch

        self.torch, self.path = torch, str(path)
        self.stream = stream or torch.cuda.current_stream(gpu_id)
        demuxer = nvc.CreateDemuxer(filename=self.path)
        codec, chroma, depth = demuxer.GetNvCodecId(), demuxer.ChromaFormat(), int(demuxer.BitDepth())
        self.width, self.height = int(demuxer.Width()), int(demuxer.Height())
        name = str(codec).upper().split(".")[-1]
        if not any(c in name for c in NVDEC_CODECS):
            raise NvdecUnsupported(f"codec {name} is not decoded on NVDEC here")
        if "420" not in str(chroma) or depth != 8:
            raise NvdecUnsupported(f"{name} {str(chroma).split('.')[-1]} {depth}-bit: NVDEC gives no exact 8-bit 4:2:0")
        caps = nvc.GetDecoderCaps(gpuid=gpu_id, codec=codec, chromaformat=chroma, bitdepth=depth)
        if not caps.get("supported", 1) or self.width > caps.get("max_width", 1 << 30) or \
                self.height > caps.get("max_height", 1 << 30) or self.width % 2 or self.height % 2:
            raise NvdecUnsupported(f"{name} {self.width}x{self.height} is outside this NVDEC's limits")
        self.demuxer = demuxer
        self.decoder = nvc.CreateDecoder(gpuid=gpu_id, codec=codec, cudacontext=0, cudastream=self.stream.cuda_stream,
                                         usedevicememory=True)
        self.colour = Colour("bt709" if "709" in str(demuxer.ColorSpace()) else "bt601",
                             "JPEG" in str(demuxer.ColorRange()).upper() or "FULL" in str(demuxer.ColorRange()).upper())
        self.time_base = Fraction(int(demuxer.GetTimebaseNum()), int(demuxer.GetTimebaseDen()))
        self.fps = Fraction(demuxer.FrameRate()).limit_denominator(1001000) if demuxer.FrameRate() else Fraction(25)
        self.counted = any(c in str(demuxer.GetContainerName()).lower() for c in COUNTED_CONTAINERS) \
            if hasattr(demuxer, "GetContainerName") else self.path.lower().endswith(".avi")

    def _frames(self) -> Iterator[tuple[int, object]]:
        torch = self.torch
        for packet in self.demuxer:
            for frame in self.decoder.Decode(packet):
                yield int(frame.getPTS()), plane_view(torch.from_dlpack(frame))

    def batches(self, size: int = 32) -> Iterator[YuvBatch]:
        """Frames in display order, `size` at a time, copied out of the decoder's surfaces on this source's
        stream (the decoder reuses them)."""
        torch = self.torch
        rows = self.height * 3 // 2
        first_pts, index = None, 0
        with torch.cuda.stream(self.stream):
            buffer, times = torch.empty((size, rows, self.width), dtype=torch.uint8, device="cuda"), []
            for pts, view in self._frames():
                if first_pts is None:
                    first_pts = pts
                buffer[len(times)].copy_(view[:rows, :self.width])
                times.append(float(index / self.fps) if self.counted else float((pts - first_pts) * self.time_base))
                index += 1
                if len(times) == size:
                    yield YuvBatch(times, *nv12_planes(buffer.clone()))
                    times = []
            if times:
                yield YuvBatch(times, *nv12_planes(buffer[:len(times)].clone()))


class PyavSource:
    reader = "cpu"

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        from haic_resources.video.av_open import open_input

        self.path = str(path)
        self.container = open_input(self.path)
        if not self.container.streams.video:
            self.container.close()
            raise ValueError("no video stream")
        self.stream = stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        cc = stream.codec_context
        self.width, self.height = int(cc.width), int(cc.height)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        self.fps = Fraction(rate.numerator, rate.denominator)
        self.time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator)
        self.counted = any(n in self.container.format.name.split(",") for n in COUNTED_CONTAINERS)
        self.colour = Colour()

    def batches(self, size: int = 32) -> Iterator[YuvBatch]:
        start = self.stream.start_time or 0
        times, planes = [], []
        try:
            for index, frame in enumerate(self.container.decode(self.stream)):
                if index == 0:
                    self.colour = Colour.from_tags(int(frame.colorspace), int(frame.color_range) == 2)
                if self.counted or frame.pts is None:
                    t = float(index / self.fps)
                else:
                    t = float((frame.pts - start) * self.time_base)
                times.append(t)
                planes.append(yuv420_planes(frame))
                if len(times) == size:
                    yield _stacked(times, planes)
                    times, planes = [], []
            if times:
                yield _stacked(times, planes)
        finally:
            self.container.close()


def plane_view(frame):
    """An NV12 frame's DLPack view as one (H * 3/2, W) uint8 plane, whichever unit axis it carries."""
    if frame.dim() == 3:
        return frame.squeeze(-1) if frame.shape[-1] == 1 else frame.squeeze(0)
    return frame


def yuv420_planes(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One PyAV frame as yuv420p planes (swscale converts other formats)."""
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    return tuple(np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:, :w]
                 for p, w in zip(frame.planes, (frame.width, (frame.width + 1) // 2, (frame.width + 1) // 2)))


def _stacked(times, planes) -> YuvBatch:
    return YuvBatch(list(times), *(np.stack([p[k] for p in planes]) for k in range(3)))


def open_source(path: str | os.PathLike, gpu: bool, gpu_id: int = 0, stream=None):
    """(source, why not NVDEC or None): NVDEC when `gpu` and it decodes this file, else PyAV."""
    if gpu:
        try:
            return NvdecSource(path, gpu_id, stream), None
        except NvdecUnsupported as exc:
            return PyavSource(path), str(exc)
        except Exception as exc:  # a file the demuxer or decoder refuses
            return PyavSource(path), f"NVDEC: {type(exc).__name__}: {exc}"[:300]
    return PyavSource(path), None
