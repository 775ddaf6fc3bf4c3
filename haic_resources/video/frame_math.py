"""The GPU path's pixel work in integer arithmetic, one code for numpy (CPU) and torch (GPU or CPU).

Why integers: every operation here is exact (sums, shifts, table lookups, integer division), so the
same 8-bit YUV planes give the same bytes on the CPU and on any GPU, in any number of threads and
batches. NVDEC's YUV output is the H.264 standard's (bit-exact, as FFmpeg's software decoder), so a
frame decoded on the GPU and converted here equals the same frame decoded by PyAV and converted here
by numpy: that is the device test of repeatability, and numpy is this module's reference in CI (no GPU,
no torch there).

- `yuv420_to_rgb`: 8-bit 4:2:0 planes to RGB, BT.601 or BT.709 (as the stream is tagged, as PyAV and
  OpenCV choose), limited or full range, chroma repeated 2 × 2, in the arithmetic of FFmpeg's x86 swscale
  converter (what OpenCV's `VideoCapture` and PyAV's `to_ndarray("rgb24")` run): byte for byte their
  frames on the shared and WebVid-shaped videos measured (`tests/test_frame_math.py`).
- `area_resize`: area interpolation in 12-bit fixed point, for the people model's frames (the CPU reader
  uses swscale's AREA; against it, with the colour conversion: mean 1.6–2.4 levels, 99th percentile
  6–11, measured on single frames of four shared videos).
- `linear_resize_cv2`: `cv2.resize(..., INTER_LINEAR)` on uint8 in OpenCV's own fixed point (11-bit
  weights): the analysis frames of PySceneDetect's `detect()` (it shrinks every frame by width / 256).
- `bgr_to_hsv_cv2`: `cv2.cvtColor(..., COLOR_BGR2HSV)` on uint8, OpenCV's tables and shifts, exactly.
- `hsv_delta_sums`: ContentDetector's per-channel sums of absolute differences to the previous frame.

Arrays are (N, H, W[, C]) stacks; `ops_for(x)` picks numpy or torch by the array's type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

HSV_SHIFT = 12  # OpenCV's hsv_shift
RESIZE_COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS


class _Numpy:
    name = "numpy"

    @staticmethod
    def i32(x):
        return x.astype(np.int32)

    @staticmethod
    def i64(x):
        return x.astype(np.int64)

    @staticmethod
    def u8(x):
        return x.astype(np.uint8)

    @staticmethod
    def const(values, like, dtype=np.int64):
        return np.asarray(values, dtype=dtype)

    stack = staticmethod(lambda xs, axis: np.stack(xs, axis=axis))
    cat = staticmethod(lambda xs, axis: np.concatenate(xs, axis=axis))
    clip = staticmethod(np.clip)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    where = staticmethod(np.where)
    abs = staticmethod(np.abs)

    @staticmethod
    def take(x, index, axis):
        return np.take(x, index, axis=axis)

    @staticmethod
    def sum_hw(x):
        return x.sum(axis=(1, 2))


_DEVICE_CONSTANTS: dict = {}


class _Torch:
    name = "torch"

    def __init__(self, torch):
        self.t = torch

    def i32(self, x):
        return x.to(self.t.int32)

    def i64(self, x):
        return x.to(self.t.int64)

    def u8(self, x):
        return x.to(self.t.uint8)

    def const(self, values, like, dtype=None):
        """A small constant (indices, weights, tables) on `like`'s device, made once per value and device: a
        copy from pageable host memory per batch would wait on the stream, and copies of that kind share one
        staging path between threads."""
        values = np.ascontiguousarray(values)
        key = (values.tobytes(), values.dtype.str, values.shape, str(like.device), dtype)
        found = _DEVICE_CONSTANTS.get(key)
        if found is None:
            found = _DEVICE_CONSTANTS[key] = self.t.as_tensor(values, device=like.device, dtype=dtype or self.t.int64)
        return found

    def stack(self, xs, axis):
        return self.t.stack(xs, dim=axis)

    def cat(self, xs, axis):
        return self.t.cat(xs, dim=axis)

    def clip(self, x, lo, hi):
        return self.t.clamp(x, lo, hi)

    def maximum(self, a, b):
        return self.t.maximum(a, b)

    def minimum(self, a, b):
        return self.t.minimum(a, b)

    def where(self, c, a, b):
        return self.t.where(c, a, b)

    def abs(self, x):
        return self.t.abs(x)

    def take(self, x, index, axis):
        return self.t.index_select(x, axis, index)

    def sum_hw(self, x):
        return x.sum(dim=(1, 2))


def ops_for(x):
    if isinstance(x, np.ndarray):
        return _Numpy()
    import torch

    return _Torch(torch)


# --------------------------------------------------------------------------------------------
# Colour


@dataclass(frozen=True)
class Colour:
    """How a stream's YUV maps to RGB: "bt601" | "bt709", and whether Y spans 0–255 (full) or 16–235."""

    matrix: str = "bt601"
    full_range: bool = False

    @staticmethod
    def from_tags(colorspace: int | None, full_range: bool | None) -> "Colour":
        """From H.273 / FFmpeg codes (1 = BT.709; 2 unspecified and the rest: BT.601, FFmpeg's default)."""
        return Colour("bt709" if colorspace == 1 else "bt601", bool(full_range))


# FFmpeg's ff_yuv2rgb_coeffs (crv, cbu, cgu, cgv; 16.16, chroma already scaled by 255/224) for the two matrices.
SWS_COEFFICIENTS = {"bt601": (104597, 132201, 25675, 53279), "bt709": (117489, 138438, 13975, 34925)}


def _c_div(a: int, b: int) -> int:
    """C's integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


@lru_cache(maxsize=8)
def _yuv_coefficients(colour: Colour) -> tuple[int, int, int, int, int, int]:
    """(y offset, y, V→R, U→G, V→G, U→B) as swscale's x86 YUV→RGB code holds them: 16-bit multipliers applied
    (as `pmulhw`, keeping the high half) to values scaled by 8 (`ff_yuv2rgb_c_init_tables`, yuv_2_rgb.asm)."""
    crv, cbu, cgu, cgv = SWS_COEFFICIENTS[colour.matrix]
    cgu, cgv = -cgu, -cgv
    if colour.full_range:
        cy, oy = 1 << 16, 0
        crv, cbu, cgu, cgv = (_c_div(c * 224, 255) for c in (crv, cbu, cgu, cgv))
    else:
        cy, oy = (1 << 16) * 255 // 219, 16 << 16

    def round16(value: int) -> int:  # roundToInt16
        return (value + (1 << 15)) >> 16

    return round16(oy * 8), round16(cy << 13), round16(crv << 13), round16(cgu << 13), round16(cgv << 13), \
        round16(cbu << 13)


def yuv420_to_rgb(y, u, v, colour: Colour = Colour()):
    """(N, H, W) luma and (N, ceil(H/2), ceil(W/2)) chroma planes, uint8 → (N, H, W, 3) RGB uint8."""
    return yuv420_to_rgb_at(y, u, v, colour, np.arange(y.shape[1]), np.arange(y.shape[2]))


def yuv420_to_rgb_at(y, u, v, colour: Colour, rows: np.ndarray, cols: np.ndarray):
    """The RGB of the pixels at `rows` × `cols` only (N, len(rows), len(cols), 3): what a resize reads."""
    ops = ops_for(y)
    r_full, c_full = ops.const(rows, y), ops.const(cols, y)
    r_half, c_half = ops.const(rows // 2, y), ops.const(cols // 2, y)
    luma = ops.i32(ops.take(ops.take(y, r_full, 1), c_full, 2))
    u_full = ops.i32(ops.take(ops.take(u, r_half, 1), c_half, 2)) - 128
    v_full = ops.i32(ops.take(ops.take(v, r_half, 1), c_half, 2)) - 128
    y_offset, cy, rv, gu, gv, bu = _yuv_coefficients(colour)
    luma = ((luma * 8 - y_offset) * cy) >> 16
    u_full, v_full = u_full * 8, v_full * 8
    r = luma + ((v_full * rv) >> 16)
    g = luma + ((u_full * gu) >> 16) + ((v_full * gv) >> 16)
    b = luma + ((u_full * bu) >> 16)
    return ops.u8(ops.clip(ops.stack([r, g, b], 3), 0, 255))


def nv12_planes(frames):
    """NVDEC's NV12 stack (N, H*3/2, W) uint8 → luma (N, H, W) and chroma (N, H/2, W/2) views."""
    n, rows, w = frames.shape
    h = rows * 2 // 3
    uv = frames[:, h:, :].reshape(n, h // 2, w // 2, 2)
    return frames[:, :h, :], uv[..., 0], uv[..., 1]


# --------------------------------------------------------------------------------------------
# Resizes


AREA_BITS = 12  # fixed-point weights of `area_resize`: each output pixel's weights sum to exactly 4096


@lru_cache(maxsize=64)
def _area_taps(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Area interpolation along one axis: output pixel i covers [i·s, (i+1)·s) of the source (s = size/out);
    each source pixel weighs its overlap. (out, K) source indices and integer weights summing to 2^AREA_BITS
    (the rounding remainder goes to the largest weight). Upscaling gives each output its one or two sources."""
    scale = size / out
    taps = int(np.ceil(scale)) + 1
    index = np.zeros((out, taps), dtype=np.int64)
    weight = np.zeros((out, taps), dtype=np.int64)
    one = 1 << AREA_BITS
    for i in range(out):
        lo, hi = i * scale, (i + 1) * scale
        first = int(np.floor(lo))
        cover = np.array([max(0.0, min(hi, j + 1) - max(lo, j)) for j in range(first, first + taps)])
        cover[[j >= size for j in range(first, first + taps)]] = 0.0
        w = np.rint(cover / cover.sum() * one).astype(np.int64)
        w[np.argmax(w)] += one - w.sum()
        index[i] = np.minimum(np.arange(first, first + taps), size - 1)
        weight[i] = w
    return index, weight


def area_resize(images, out_h: int, out_w: int):
    """(N, H, W, C) uint8 → (N, out_h, out_w, C) uint8 by area interpolation (cv2 INTER_AREA's idea), in
    12-bit fixed point: a horizontal then a vertical weighted sum, rounded once."""
    ops = ops_for(images)
    n, h, w, _ = images.shape
    if (h, w) == (out_h, out_w):
        return images
    x = ops.i32(images)
    xi, xw = _area_taps(w, out_w)
    horizontal = None
    for k in range(xi.shape[1]):
        term = ops.take(x, ops.const(xi[:, k], images), 2) * ops.i32(ops.const(xw[:, k], images)).reshape(1, 1, out_w, 1)
        horizontal = term if horizontal is None else horizontal + term
    yi, yw = _area_taps(h, out_h)
    total = None
    for k in range(yi.shape[1]):
        term = ops.i64(ops.take(horizontal, ops.const(yi[:, k], images), 1)) * ops.const(yw[:, k], images).reshape(
            1, out_h, 1, 1)
        total = term if total is None else total + term
    return ops.u8((total + (1 << (2 * AREA_BITS - 1))) >> (2 * AREA_BITS))


@lru_cache(maxsize=64)
def _linear_taps(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR taps along one axis: first source index, next index, 11-bit weight of
    the first (computed in float32 as OpenCV does, then rounded)."""
    scale = size / out
    fx = ((np.arange(out) + 0.5) * scale - 0.5).astype(np.float32)
    sx = np.floor(fx).astype(np.int64)
    fx = (fx - sx.astype(np.float32)).astype(np.float32)
    low = sx < 0
    fx[low], sx[low] = 0.0, 0
    high = sx >= size - 1
    fx[high], sx[high] = 0.0, size - 1
    one = 1 << RESIZE_COEF_BITS
    w1 = np.rint(fx * np.float32(one)).astype(np.int64)
    w0 = np.rint((np.float32(1.0) - fx) * np.float32(one)).astype(np.int64)
    return sx, np.minimum(sx + 1, size - 1), np.stack([w0, w1])


def linear_resize_cv2(images, out_h: int, out_w: int):
    """`cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_LINEAR)` for uint8 (N, H, W, C) stacks,
    in OpenCV's fixed point: a horizontal pass with 11-bit weights, then a vertical pass as its SIMD
    code rounds it; an exact halving is OpenCV's 2 × 2 average, as there."""
    n, h, w, _ = images.shape
    if (h, w) == (out_h, out_w):
        return images
    return _linear_from(images, _linear_taps(h, out_h), _linear_taps(w, out_w), halving=h == 2 * out_h and w == 2 * out_w)


def yuv420_to_bgr_linear(y, u, v, colour: Colour, out_h: int, out_w: int):
    """`linear_resize_cv2` of the BGR image of these planes, converting only the pixels the resize reads (a
    few per output pixel): PySceneDetect's analysis frame at a fraction of a whole-frame conversion."""
    h, w = y.shape[1], y.shape[2]
    if (h, w) == (out_h, out_w) or (h == 2 * out_h and w == 2 * out_w):
        rgb = yuv420_to_rgb(y, u, v, colour)
        return linear_resize_cv2(rgb, out_h, out_w)[..., ::-1] if isinstance(rgb, np.ndarray) else \
            linear_resize_cv2(rgb, out_h, out_w).flip(-1)
    ytaps, xtaps = _linear_taps(h, out_h), _linear_taps(w, out_w)
    rows, cols = np.unique(np.concatenate(ytaps[:2])), np.unique(np.concatenate(xtaps[:2]))
    rgb = yuv420_to_rgb_at(y, u, v, colour, rows, cols)
    local_y = (np.searchsorted(rows, ytaps[0]), np.searchsorted(rows, ytaps[1]), ytaps[2])
    local_x = (np.searchsorted(cols, xtaps[0]), np.searchsorted(cols, xtaps[1]), xtaps[2])
    out = _linear_from(rgb, local_y, local_x, halving=False)
    return out[..., ::-1] if isinstance(out, np.ndarray) else out.flip(-1)


def _linear_from(images, ytaps, xtaps, halving: bool):
    ops = ops_for(images)
    (y0, y1, wy), (x0, x1, wx) = ytaps, xtaps
    out_h, out_w = len(y0), len(x0)
    if halving:  # OpenCV switches to INTER_AREA here
        x = ops.i32(images)
        total = x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]
        return ops.u8((total + 2) >> 2)
    x = ops.i32(images)
    a0 = ops.i32(ops.const(wx[0], images)).reshape(1, 1, out_w, 1)
    a1 = ops.i32(ops.const(wx[1], images)).reshape(1, 1, out_w, 1)
    horizontal = ops.take(x, ops.const(x0, images), 2) * a0 + ops.take(x, ops.const(x1, images), 2) * a1
    top = ops.take(horizontal, ops.const(y0, images), 1) >> 4
    bottom = ops.take(horizontal, ops.const(y1, images), 1) >> 4
    b0 = ops.const(wy[0], images).reshape(1, out_h, 1, 1)
    b1 = ops.const(wy[1], images).reshape(1, out_h, 1, 1)
    out = (((ops.i64(top) * b0) >> 16) + ((ops.i64(bottom) * b1) >> 16) + 2) >> 2
    return ops.u8(ops.clip(out, 0, 255))


def scaled_size(width: int, height: int, long_side: int | None) -> tuple[int, int]:
    """(w, h) with the long side scaled to `long_side`, as `frame_reader.resized_size`."""
    if long_side is None:
        return width, height
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def detect_analysis_size(width: int, height: int) -> tuple[int, int]:
    """The frame size `scenedetect.detect()` analyses: shrunk by (larger side / 256) when that is ≥ 256."""
    larger = max(width, height)
    if larger < 256:
        return width, height
    factor = larger / 256.0
    return max(1, round(width / factor)), max(1, round(height / factor))


# --------------------------------------------------------------------------------------------
# HSV and ContentDetector's score


@lru_cache(maxsize=1)
def _hsv_tables() -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's sdiv_table and hdiv_table180 (saturate_cast<int> of a double: round half to even)."""
    i = np.arange(1, 256, dtype=np.float64)
    sdiv = np.concatenate([[0], np.rint((255 << HSV_SHIFT) / i)]).astype(np.int64)
    hdiv = np.concatenate([[0], np.rint((180 << HSV_SHIFT) / (6.0 * i))]).astype(np.int64)
    return sdiv, hdiv


def bgr_to_hsv_cv2(images):
    """`cv2.cvtColor(image, cv2.COLOR_BGR2HSV)` for uint8 (N, H, W, 3) stacks: H in [0, 180)."""
    ops = ops_for(images)
    x = ops.i32(images)
    b, g, r = x[..., 0], x[..., 1], x[..., 2]
    v = ops.maximum(ops.maximum(b, g), r)
    diff = v - ops.minimum(ops.minimum(b, g), r)
    sdiv, hdiv = (ops.const(t, images) for t in _hsv_tables())
    half = 1 << (HSV_SHIFT - 1)
    s = (ops.i64(diff) * ops.take(sdiv, ops.i64(v).reshape(-1), 0).reshape(v.shape) + half) >> HSV_SHIFT
    h = ops.where(v == r, g - b, ops.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (ops.i64(h) * ops.take(hdiv, ops.i64(diff).reshape(-1), 0).reshape(v.shape) + half) >> HSV_SHIFT
    h = ops.where(h < 0, h + 180, h)
    return ops.u8(ops.stack([h, s, ops.i64(v)], 3))


def hsv_delta_sums(hsv, previous=None):
    """(N, 3) int64: Σ|hsv[k] − hsv[k−1]| per channel, frame 0 against `previous` (the HSV image before
    this stack, or None: then row 0 is zeros, as ContentDetector scores its first frame 0)."""
    ops = ops_for(hsv)
    x = ops.i32(hsv)
    first = x[:1] if previous is None else ops.i32(previous)[None]
    before = ops.cat([first, x[:-1]], 0)
    return ops.i64(ops.sum_hw(ops.abs(x - before)))


def content_score(sums, num_pixels: int, weights=(1.0, 1.0, 1.0, 0.0)) -> float:
    """ContentDetector's frame score from one frame's three sums, in its own float arithmetic: each
    component an exact integer sum over the pixel count (numpy float64), weighted, summed plainly over
    numpy scalars (from Python 3.12 `sum` of plain floats is compensated; numpy scalars add plainly)."""
    components = (*(np.float64(int(total)) / float(num_pixels) for total in sums), 0.0)
    return sum(c * w for c, w in zip(components, weights)) / sum(abs(w) for w in weights)

