"""The batched backend's pre- and post-processing as tensor operations on the networks' device.

Measured on the H200 (bench/GPU_NOTES.md): with OpenCV letterboxing and cropping and numpy decoding
on the host, the networks waited on the CPU (253 frames/s, GPU 7 % busy). Here every step runs on
the device over whole stacks, and only boxes, scores and keypoints come back:
- letterbox: frames (already at the detector's long side, as the readers deliver them; others are
  resized bilinearly) placed top-left on a canvas of YOLOX's pad value 114, BGR, 0–255;
- YOLOX decode: grid and strides, objectness × person score, cut, then NMS per frame in one
  `torchvision.ops.batched_nms`, the best `max_people` per frame;
- crops: each person's affine map (`crop_transform`, the ONNX path's) sampled bilinearly with zero
  border from the frame, as `cv2.warpAffine(..., INTER_LINEAR)` does, then ImageNet normalization;
- SimCC decode: argmax and the smaller of the two maxima, as `decode_simcc`.
"""

from __future__ import annotations

import numpy as np

from haic_resources.pose.estimator import nms
from haic_resources.pose.rtmpose_onnx import (IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, YOLOX_PAD_VALUE, crop_transform,
                                              yolox_grid)


def frames_to_device(torch, frames: list, device: str) -> list:
    """(h, w, 3) uint8 RGB frames (numpy or tensors) as tensors on `device`. Host frames of one size
    travel together: one copy into pinned memory, one asynchronous transfer (not one per frame)."""
    out: list = [f if isinstance(f, torch.Tensor) and str(f.device).startswith(device) else None for f in frames]
    if device.startswith("cuda"):
        for f in out:  # made on a decoder's stream: its memory is not reused while this stream reads it
            if f is not None:
                f.record_stream(torch.cuda.current_stream())
    by_shape: dict[tuple, list[int]] = {}
    for k, f in enumerate(frames):
        if out[k] is None:
            by_shape.setdefault(tuple(f.shape), []).append(k)
    for shape, ks in by_shape.items():
        host = torch.empty((len(ks), *shape), dtype=torch.uint8, pin_memory=device.startswith("cuda"))
        view = host.numpy()
        for i, k in enumerate(ks):
            view[i] = frames[k].cpu().numpy() if isinstance(frames[k], torch.Tensor) else frames[k]
        stack = host.to(device, non_blocking=True)
        for i, k in enumerate(ks):
            out[k] = stack[i]
    return out


def letterbox(torch, frames: list, input_hw: tuple[int, int]) -> tuple:
    """(N, 3, H, W) float BGR canvas for YOLOX and each frame's resize ratio; frames of one size in one
    operation."""
    n = len(frames)
    canvas = torch.full((n, 3, *input_hw), float(YOLOX_PAD_VALUE), device=frames[0].device)
    ratios = [0.0] * n
    by_shape: dict[tuple, list[int]] = {}
    for k, frame in enumerate(frames):
        by_shape.setdefault(tuple(frame.shape[:2]), []).append(k)
    for (h, w), ks in by_shape.items():
        ratio = min(input_hw[0] / h, input_hw[1] / w)
        rh, rw = max(1, int(round(h * ratio))), max(1, int(round(w * ratio)))
        x = torch.stack([frames[k] for k in ks]).permute(0, 3, 1, 2).flip(1).float()  # RGB -> BGR, NCHW
        if (rh, rw) != (h, w):
            x = torch.nn.functional.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False)
        canvas[torch.as_tensor(ks, device=canvas.device), :, :rh, :rw] = x
        for k in ks:
            ratios[k] = ratio
    return canvas, ratios


def decode_yolox_batch(torch, raw, input_hw, ratios, frame_sizes, score_threshold, nms_threshold, max_people):
    """Per frame (boxes (n, 4) float64 in frame pixels, scores (n,)), from the raw head stack (N, A, ≥6)."""
    grid, strides = (torch.as_tensor(a, device=raw.device) for a in yolox_grid(input_hw))
    raw = raw.float()
    xy = (raw[..., :2] + grid) * strides
    wh = torch.exp(raw[..., 2:4]) * strides
    scores = raw[..., 4] * raw[..., 5]
    frame_idx, anchor = torch.nonzero(scores >= score_threshold, as_tuple=True)
    ratio = torch.as_tensor(ratios, device=raw.device, dtype=torch.float32)[frame_idx, None]
    boxes = torch.cat([xy[frame_idx, anchor] - wh[frame_idx, anchor] / 2,
                       xy[frame_idx, anchor] + wh[frame_idx, anchor] / 2], dim=1) / ratio
    kept_scores = scores[frame_idx, anchor]
    boxes, kept_scores, frame_idx = boxes.cpu().numpy(), kept_scores.cpu().numpy(), frame_idx.cpu().numpy()
    out = []
    for k, (h, w) in enumerate(frame_sizes):  # the few candidates past the score cut: the ONNX path's NMS
        mine = frame_idx == k
        b, sc = boxes[mine].astype(np.float64), kept_scores[mine].astype(np.float64)
        idx = nms(b, sc, nms_threshold)[:max_people]
        out.append((np.clip(b[idx], 0, [w, h, w, h]), sc[idx]))
    return out


def crop_stack(torch, frames: list, owners: list[int], boxes: np.ndarray, input_wh: tuple[int, int], padding: float,
               chunk: int = 256):
    """(C, 3, h, w) normalized RGB crops of each (frame owners[c], boxes[c]) and the (C, 2, 3) maps."""
    w_in, h_in = input_wh
    maps = np.stack([crop_transform(b, input_wh, padding) for b in boxes])
    inverse = np.linalg.inv(np.concatenate([maps, np.tile([[[0.0, 0.0, 1.0]]], (len(maps), 1, 1))], axis=1))[:, :2]
    device = frames[0].device
    us, vs = torch.meshgrid(torch.arange(w_in, device=device, dtype=torch.float32),
                            torch.arange(h_in, device=device, dtype=torch.float32), indexing="xy")
    dst = torch.stack([us, vs, torch.ones_like(us)], dim=-1).reshape(-1, 3)  # (h*w, 3)
    mean = torch.as_tensor(IMAGENET_MEAN_RGB, device=device).view(1, 3, 1, 1)
    std = torch.as_tensor(IMAGENET_STD_RGB, device=device).view(1, 3, 1, 1)
    inv = torch.as_tensor(inverse, device=device, dtype=torch.float32)
    out = torch.empty((len(boxes), 3, h_in, w_in), device=device)
    by_size: dict[tuple[int, int], list[int]] = {}
    for c, owner in enumerate(owners):
        by_size.setdefault(tuple(frames[owner].shape[:2]), []).append(c)
    for (h, w), crops in by_size.items():  # one grid_sample per chunk of crops from frames of one size
        frame_ids = sorted({owners[c] for c in crops})
        position = {f: i for i, f in enumerate(frame_ids)}
        stack = torch.stack([frames[f] for f in frame_ids]).permute(0, 3, 1, 2)  # (F, 3, h, w) uint8
        scale = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], device=device)
        for start in range(0, len(crops), chunk):
            part = crops[start:start + chunk]
            images = stack[torch.as_tensor([position[owners[c]] for c in part], device=device)].float()
            src = dst[None] @ inv[part].transpose(1, 2)  # (B, h_in*w_in, 2): each crop pixel's source pixel
            grid = (src * scale - 1).view(len(part), h_in, w_in, 2)
            sampled = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                                      align_corners=True)
            out[part] = (sampled - mean) / std
    return out, maps


def decode_simcc_batch(torch, simcc_x, simcc_y, split_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17, 2) keypoints in crop pixels and (N, 17) scores, as `decode_simcc`, on the device."""
    mx, ix = simcc_x.float().max(dim=2)
    my, iy = simcc_y.float().max(dim=2)
    keypoints = torch.stack([ix, iy], dim=2).double() / split_ratio
    return keypoints.cpu().numpy(), torch.minimum(mx, my).double().cpu().numpy()
