"""GPU decode (NVDEC, through NVIDIA's PyNvVideoCodec, MIT, with its own demuxer) of the frames nearest
to given instants, with the CPU reader (`frame_reader.read_frames_at`, PyAV) as fallback and reference.

The same contract as the CPU reader: a `FrameSample` of RGB uint8 frames resized once to the pose
model's long side. The frames are decoded on the GPU (the decoder seeks to the keyframe before each
wanted frame and decodes forward) in NVDEC's own NV12, converted to RGB and resized (area average)
there by `frame_math`'s integer code, and copied to the host small (or left on the GPU).

Instants map to frame indices through the decoder's own time→index lookup when it has one, else
index = round(t × average fps) (constant-rate streams; AVI is). `frames_decoded` counts the frames
handed back: NVDEC does not report how many it decoded to reach them.

One `NvdecReader` per thread (a decoder is reused across files by reconfiguring it). Each thread's
GPU work runs on a CUDA stream of its own, finished before the frames are handed back: on the default
stream the decoders' resizes and the models' kernels queue behind one another. Measured end to end
(bench/GPU_NOTES.md, run 5, one H100, fp16, three calls): 3–9 % faster on streams of their own (30.7 vs
29.8 clips/s in the last); `HAIC_NVDEC_OWN_STREAMS=0` goes back to the default stream.

`read_frames` falls back to the CPU reader when PyNvVideoCodec, a GPU or the codec is missing, and
says which reader produced the frames.

The colour conversion is ours: PyNvVideoCodec 2.2.4's RGB output is not repeatable in threads (likely cause, from
its library's symbols: its NV12→RGB kernels read the colour matrix from one `__constant__` array, `matYuv2Rgb`,
that `SetMatYuv2Rgb` rewrites through `cudaMemcpyToSymbol` for each stream's matrix; on the H100, 13 of 19 files got 2–4 different frame sets over 4 repeats in 12
threads, up to 20 levels apart: bench/GPU_NOTES.md, issue 25). With NV12 and our conversion 18 of 19 were
repeatable; the 19th, the long-GOP slideshow, got another frame (187 levels off) in one repeat: fetching by index
is not yet repeatable there, so the stages use the single pass (`single_pass`, 19 of 19) and the CPU reader.
"""

from __future__ import annotations

import logging
import os
import threading

from haic_resources.video import frame_math as fm
from haic_resources.video.frame_reader import FrameSample, SampledFrame, read_frames_at, resized_size
from haic_resources.video.yuv_sources import plane_view

log = logging.getLogger(__name__)

# Largest frame one reconfigurable decoder accepts: 2048 is the H200's NVDEC limit for MPEG-4 part 2
# (measured: 4096 fails there with "Resolution not supported"); the test media are at most 1920.
MAX_SIDE = 2048


class NvdecReader:
    def __init__(self, gpu_id: int = 0, strategy: str = "index") -> None:
        """strategy: "index" (the decoder fetches each wanted frame by index) or "sequential" (one seek,
        then one forward pass keeping the wanted frames)."""
        import PyNvVideoCodec as nvc  # noqa: N813
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("NVDEC decode needs a CUDA GPU; torch sees none")
        self.nvc, self.torch, self.gpu_id, self.strategy = nvc, torch, gpu_id, strategy
        self.own_streams = os.environ.get("HAIC_NVDEC_OWN_STREAMS", "1") != "0"
        self._local = threading.local()

    def _stream(self):
        """This thread's CUDA stream, or None for the default stream."""
        if not self.own_streams:
            return None
        stream = getattr(self._local, "stream", None)
        if stream is None:
            stream = self._local.stream = self.torch.cuda.Stream(device=self.gpu_id)
        return stream

    def _decoder(self, path: str):
        decoder = getattr(self._local, "decoder", None)
        if decoder is not None:
            try:
                decoder.reconfigure_decoder(path)
                return decoder
            except Exception:  # another codec: a fresh decoder
                self._local.decoder = None
        decoder = self.nvc.SimpleDecoder(path, gpu_id=self.gpu_id, use_device_memory=True,
                                         output_color_type=self.nvc.OutputColorType.NATIVE,
                                         max_width=MAX_SIDE, max_height=MAX_SIDE)
        self._local.decoder = decoder
        return decoder

    def frame_indices(self, decoder, timestamps: list[float]) -> tuple[list[int], float]:
        """Frame index nearest to each instant, and the stream's average rate."""
        meta = decoder.get_stream_metadata()
        fps = float(meta.average_fps)
        last = len(decoder) - 1
        out = []
        for t in timestamps:
            try:
                index = int(decoder.get_index_from_time_in_seconds(float(t)))
            except Exception:
                index = int(round(t * fps))
            out.append(min(max(index, 0), last))
        return out, fps

    def _colour(self, path: str) -> fm.Colour:
        """The stream's matrix and range (from its demuxer, once per file and thread)."""
        cache = getattr(self._local, "colours", None)
        if cache is None:
            cache = self._local.colours = {}
        if path not in cache:
            demuxer = self.nvc.CreateDemuxer(filename=path)
            if "420" not in str(demuxer.ChromaFormat()) or int(demuxer.BitDepth()) != 8:
                raise ValueError(f"{demuxer.ChromaFormat()} {demuxer.BitDepth()}-bit: not 8-bit 4:2:0 (NV12)")
            cache[path] = fm.Colour("bt709" if "709" in str(demuxer.ColorSpace()) else "bt601",
                                    "JPEG" in str(demuxer.ColorRange()).upper())
        return cache[path]

    @staticmethod
    def _frames_by_index(decoder, unique: list[int]) -> list:
        return decoder.get_batch_frames_by_index(unique)

    def _frames_in_one_pass(self, decoder, unique: list[int]) -> list:
        """Seek once to the first wanted frame, then decode forward, keeping copies of the wanted ones."""
        torch = self.torch
        wanted, kept = set(unique), {}
        decoder.seek_to_index(unique[0])
        index = unique[0]
        while index <= unique[-1]:
            batch = decoder.get_batch_frames(min(64, unique[-1] - index + 1))
            if not batch:
                break
            for frame in batch:
                if index in wanted:
                    kept[index] = torch.from_dlpack(frame).clone()  # the decoder reuses its buffers
                index += 1
        if len(kept) != len(unique):
            raise ValueError(f"decoded {len(kept)} of {len(unique)} wanted frames in one pass")
        return [kept[i] for i in unique]

    def read_frames_at(self, path: str | os.PathLike, timestamps: list[float], start_s: float, end_s: float,
                       long_side: int | None = None, on_gpu: bool = False) -> FrameSample:
        """As `frame_reader.read_frames_at`; with on_gpu, images are (h, w, 3) uint8 CUDA tensors."""
        torch = self.torch
        targets = [float(t) for t in timestamps]
        if not targets:
            return FrameSample([], 0, 0, 0)
        stream = self._stream()
        if stream is None:
            return self._read(path, targets, long_side, on_gpu)
        with torch.cuda.stream(stream):
            sample = self._read(path, targets, long_side, on_gpu)
        stream.synchronize()  # the frames are complete before another stream (the models') reads them
        return sample

    def _read(self, path, targets: list[float], long_side: int | None, on_gpu: bool) -> FrameSample:
        torch = self.torch
        colour = self._colour(str(path))  # before decoding: a file NVDEC gives no NV12 for goes to the CPU
        decoder = self._decoder(str(path))
        indices, fps = self.frame_indices(decoder, targets)
        unique = sorted(set(indices))
        fetch = self._frames_in_one_pass if self.strategy == "sequential" else self._frames_by_index
        try:
            frames = fetch(decoder, unique)
        except Exception:  # measured: a reconfigured decoder refuses a chroma-format change; a fresh one
            self._local.decoder = None
            decoder = self._decoder(str(path))
            frames = fetch(decoder, unique)
        if len(frames) != len(unique):
            raise ValueError(f"{path}: NVDEC returned {len(frames)} of {len(unique)} frames")
        nv12 = torch.stack([plane_view(f if isinstance(f, torch.Tensor) else torch.from_dlpack(f)) for f in frames])
        y, u, v = fm.nv12_planes(nv12)  # (N, H, W) luma: NVDEC's 4:2:0 output, 8-bit
        height, width = int(y.shape[1]), int(y.shape[2])
        out_w, out_h = resized_size(width, height, long_side)
        stack = fm.area_resize(fm.yuv420_to_rgb(y, u, v, colour), out_h, out_w)
        images = stack if on_gpu else stack.cpu().numpy()
        by_index = {index: images[k] for k, index in enumerate(unique)}
        sampled = [SampledFrame(t, i / fps, by_index[i], width, height) for t, i in zip(targets, indices)]
        return FrameSample(sampled, width, height, len(unique))


_readers: dict[tuple[int, str], NvdecReader | None] = {}


def _cpu_reader(path, timestamps, start_s, end_s, long_side):
    return read_frames_at(path, timestamps, start_s, end_s, long_side=long_side)


def read_frames(path: str | os.PathLike, timestamps: list[float], start_s: float, end_s: float,
                long_side: int | None = None, gpu: bool = True, gpu_id: int = 0, on_gpu: bool = False,
                fallback=_cpu_reader, strategy: str = "index") -> tuple[FrameSample, str]:
    """The frames from NVDEC when `gpu` and it works for this file (left on the GPU with `on_gpu`), else
    from `fallback` (the CPU reader); and which reader produced them ("nvdec" | "cpu")."""
    if gpu:
        key = (gpu_id, strategy)
        if key not in _readers:
            try:
                _readers[key] = NvdecReader(gpu_id, strategy)
            except Exception as exc:  # no PyNvVideoCodec, no GPU, no libnvcuvid
                log.warning("NVDEC unavailable (%s); decoding on the CPU", exc)
                _readers[key] = None
        reader = _readers[key]
        if reader is not None:
            try:
                return reader.read_frames_at(path, timestamps, start_s, end_s, long_side, on_gpu), "nvdec"
            except Exception as exc:  # a codec NVDEC lacks (e.g. VP8, MPEG-4 part 2 on some GPUs)
                log.warning("NVDEC could not decode %s (%s); decoding on the CPU", path, exc)
    return fallback(path, timestamps, start_s, end_s, long_side), "cpu"


def read_frames_host(path: str, timestamps: list[float], start_s: float, end_s: float, long_side: int | None = None,
                     fallback=_cpu_reader) -> FrameSample:
    """`read_frames` with the frames copied to the host, in the `FrameReader` shape of
    `clip_batch`: a module-level function, so a decoder process can run it (one NVDEC decoder per process)."""
    return read_frames(path, timestamps, start_s, end_s, long_side, fallback=fallback)[0]
