"""What runs the detector and pose networks of the batched backend: PyTorch (GPU or CPU) or ONNX Runtime.

Both take whole stacks of inputs and give numpy outputs; both say the device the work really ran
on (`device_used`), which is what the pipeline records: "cuda" only when the networks are on a GPU.

- `TorchRunner`: the ONNX files converted by onnx2torch (`torch_graph.load_torch_model`), resident on
  the device for the runner's life, inputs in chunks of `max_batch`, optional fp16. Only the
  detector columns the person decoder reads (box, objectness, person) leave the GPU.
- `OrtRunner`: ONNX Runtime sessions; a model exported with a fixed batch of 1 is run one input at
  a time, a symbolic batch takes the whole chunk. The CPU reference, and CI's path (no torch there).
"""

from __future__ import annotations

import logging
import os
from typing import Literal

import numpy as np

from haic_resources.pose.rtmpose_onnx import choose_providers

log = logging.getLogger(__name__)

Engine = Literal["auto", "torch", "onnxruntime"]
PERSON_COLUMNS = 6  # YOLOX head: cx, cy, w, h, objectness, class 0 (person)
# Every chunk goes to a network padded to max_batch inputs: one input shape per network. cuDNN builds an
# execution plan for every new shape (tens of ms per convolution), and the number of frames and person
# crops differs in every batch of clips: unpadded, the plans cost more than the networks (bench/GPU_NOTES.md,
# run 5: 32 clips a batch ran at 15 clips/s, 64 at 29, only because 64's shapes had been seen before). And
# cuDNN picks its algorithm by shape, so an input's outputs moved in the last bits with the size of the chunk
# it landed in: a person scored at the threshold was counted in one repeat of a clip and not in another
# (run 5, the arm-wrestling clip, 5 or 6 people). With one shape, an input's result depends on the input alone.


def torch_device(requested: str) -> str:
    """The torch device for `requested` ("cpu" | "cuda" | "auto"): "cuda" only when a GPU is usable."""
    import torch

    if requested not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {requested!r}")
    if requested in ("cuda", "auto") and torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        log.warning("CUDA requested but torch sees no GPU; running on CPU")
    return "cpu"


def choose_engine(engine: Engine) -> Literal["torch", "onnxruntime"]:
    """`engine`, with "auto" meaning torch when it and onnx2torch are installed, else ONNX Runtime."""
    if engine not in ("auto", "torch", "onnxruntime"):
        raise ValueError(f"engine must be 'auto', 'torch' or 'onnxruntime', got {engine!r}")
    if engine != "auto":
        return engine
    import importlib.util

    have_torch = all(importlib.util.find_spec(m) is not None for m in ("torch", "onnx2torch"))
    return "torch" if have_torch else "onnxruntime"


def _input_shape(path: str | os.PathLike) -> list:
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


class TorchRunner:
    def __init__(self, detector_path: str | os.PathLike, pose_path: str | os.PathLike, device: str = "auto",
                 half: bool = False, max_batch: int = 256) -> None:
        import torch

        from haic_resources.pose.torch_graph import load_torch_model

        self.torch = torch
        self.device_used = torch_device(device)
        self.half = half and self.device_used == "cuda"  # fp16 convolutions are a GPU matter
        self.dtype = torch.float16 if self.half else torch.float32
        self.max_batch = max_batch
        self.detector = load_torch_model(detector_path, self.device_used, self.half)
        self.pose = load_torch_model(pose_path, self.device_used, self.half)
        self.detector_input_hw = tuple(_input_shape(detector_path)[2:4])
        pose_shape = _input_shape(pose_path)
        self.pose_input_wh = (pose_shape[3], pose_shape[2])

    def _exact_fp32(self):
        """fp32 convolutions in fp32, not TF32 (cuDNN's default on a GPU): TF32's 10-bit rounding swaps
        two anchors of one person whose scores are 3e-4 apart, and NMS then keeps a box 15.9 px away
        from the CPU engine's (measured, bench/GPU_NOTES.md). The fp16 engine is the fast one."""
        cudnn = self.torch.backends.cudnn
        return cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                           allow_tf32=False)

    def _padded(self, x):
        """`x` with zero inputs appended up to max_batch, on a GPU (cuDNN); as it is on the CPU."""
        if len(x) >= self.max_batch or self.device_used != "cuda":
            return x
        return self.torch.cat([x, x.new_zeros((self.max_batch - len(x), *x.shape[1:]))])

    def _run(self, module, x) -> tuple:
        """`module` over one chunk padded to max_batch; outputs cut back to the chunk's inputs."""
        y = module(self._padded(x).to(self.dtype))
        return tuple(t[:len(x)] for t in (y if isinstance(y, (tuple, list)) else (y,)))

    def _chunks(self, module, stack: np.ndarray, columns: int | None = None) -> list[list[np.ndarray]]:
        torch = self.torch
        outs: list[list[np.ndarray]] = []
        with torch.inference_mode(), self._exact_fp32():
            for start in range(0, len(stack), self.max_batch):
                x = torch.from_numpy(np.ascontiguousarray(stack[start:start + self.max_batch]))
                if self.device_used == "cuda":
                    x = x.pin_memory().to(self.device_used, non_blocking=True)
                outs.append([(t[..., :columns] if columns else t).float().cpu().numpy() for t in self._run(module, x)])
        return outs

    def on_device(self, module, stack):
        """`module` over a device tensor stack in chunks; outputs stay on the device (tuples concatenated)."""
        torch = self.torch
        parts = []
        with torch.inference_mode(), self._exact_fp32():
            for start in range(0, len(stack), self.max_batch):
                parts.append(self._run(module, stack[start:start + self.max_batch]))
        return [torch.cat([p[k] for p in parts]) for k in range(len(parts[0]))]

    def run_detector(self, blob: np.ndarray) -> np.ndarray:
        """Raw YOLOX head output (N, A, 6) for a (N, 3, H, W) float32 stack."""
        return np.concatenate([o[0] for o in self._chunks(self.detector, blob, PERSON_COLUMNS)])

    def run_pose(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SimCC (N, 17, Wx), (N, 17, Wy) for a (N, 3, h, w) float32 stack of crops."""
        outs = self._chunks(self.pose, crops)
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


class OrtRunner:
    def __init__(self, detector_path: str | os.PathLike, pose_path: str | os.PathLike, device: str = "cpu",
                 intra_op_threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        providers = choose_providers(device, ort.get_available_providers())
        self.detector = ort.InferenceSession(str(detector_path), options, providers=providers)
        self.pose = ort.InferenceSession(str(pose_path), options, providers=providers)
        used = self.detector.get_providers()[0]
        self.device_used = "cuda" if used == "CUDAExecutionProvider" else "cpu"
        det_shape = self.detector.get_inputs()[0].shape
        pose_shape = self.pose.get_inputs()[0].shape
        self.detector_input_hw = (int(det_shape[2]), int(det_shape[3]))
        self.pose_input_wh = (int(pose_shape[3]), int(pose_shape[2]))

    @staticmethod
    def _run(session, stack: np.ndarray, names: list[str] | None = None) -> list[np.ndarray]:
        inp = session.get_inputs()[0]
        fixed = isinstance(inp.shape[0], int) and inp.shape[0] > 0
        step = int(inp.shape[0]) if fixed else max(1, len(stack))
        parts = [session.run(names, {inp.name: np.ascontiguousarray(stack[s:s + step])})
                 for s in range(0, len(stack), step)]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]

    def run_detector(self, blob: np.ndarray) -> np.ndarray:
        return self._run(self.detector, blob)[0]

    def run_pose(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        simcc_x, simcc_y = self._run(self.pose, crops, ["simcc_x", "simcc_y"])
        return simcc_x, simcc_y
