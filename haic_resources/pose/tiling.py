"""People counted over overlapping tiles of a frame as well as the whole frame (pure: numpy only).

MoveNet MultiPose sees a whole frame at a small input (long side 384) and returns at most 6 people: in a
crowd of small people it finds a few (bench/eval_pose_accuracy.py: 2–5 of the 3–8 pedestrians of
`opencv_vtest_pedestrians_first20s.mp4`), so "more than 5 people" can hardly fire. Looking again at a
grid of overlapping tiles, each at the model's full input size, finds the small people (each tile has its
own 6) while the whole-frame pass keeps the large ones. The two are merged here:

- a tile's person whose box touches an inner edge of its tile is cut by the tile: the neighbouring tile
  (tiles overlap by half their side) or the whole frame sees that person whole, so the cut one is dropped;
- tile people found twice (in two overlapping tiles) are one person: greedy NMS at `nms_iou`;
- a tile person mostly inside a whole-frame person's box (intersection over the smaller box ≥
  `overlap_threshold`) is that person (or a part of them, such as a head found alone): dropped.
  Intersection over the smaller box, not IoU, because a tile sees part of a large person as a small box.
"""

from __future__ import annotations

import numpy as np

from haic_resources.pose.estimator import Person, nms

# A tile person inside a whole-frame person's box by this fraction of its own area is that person.
OVERLAP_THRESHOLD = 0.5
# A box this close (pixels) to an inner tile edge is cut by it.
EDGE_PX = 2.0


def tile_windows(height: int, width: int, grid: int) -> list[tuple[int, int, int, int]]:
    """`grid` × `grid` tiles (x0, y0, x1, y1) covering the frame, each 2/(grid+1) of its side, overlapping
    by half a tile (grid 3: tiles of half the side at 0, 1/4 and 1/2)."""
    if grid < 2:
        raise ValueError(f"a tile grid needs at least 2 tiles a side, got {grid}")
    tile_h, tile_w = round(height * 2 / (grid + 1)), round(width * 2 / (grid + 1))
    ys = np.linspace(0, height - tile_h, grid).round().astype(int)
    xs = np.linspace(0, width - tile_w, grid).round().astype(int)
    return [(int(x), int(y), int(x) + tile_w, int(y) + tile_h) for y in ys for x in xs]


def cut_by_tile(box: np.ndarray, window: tuple[int, int, int, int], height: int, width: int,
                edge_px: float = EDGE_PX) -> bool:
    """Whether a box (frame pixels) touches an edge of its tile that is inside the frame."""
    x0, y0, x1, y1 = window
    return bool((x0 > 0 and box[0] <= x0 + edge_px) or (y0 > 0 and box[1] <= y0 + edge_px)
                or (x1 < width and box[2] >= x1 - edge_px) or (y1 < height and box[3] >= y1 - edge_px))


def overlap_of_smaller(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection of `box` with each of `boxes` over the smaller of the two areas."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    inter_w = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(0)
    inter_h = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter_w * inter_h / np.maximum(np.minimum(area, areas), 1e-9)


def merge_tile_people(whole: list[Person], tiles: list[tuple[tuple[int, int, int, int], list[Person]]],
                      height: int, width: int, nms_iou: float,
                      overlap_threshold: float = OVERLAP_THRESHOLD) -> list[Person]:
    """The whole frame's people, then the tile people (frame pixels) that are nobody already counted."""
    candidates = [p for window, people in tiles for p in people if not cut_by_tile(p.box, window, height, width)]
    if candidates:
        keep = nms(np.array([p.box for p in candidates]), np.array([p.score for p in candidates]), nms_iou)
        candidates = [candidates[i] for i in keep]  # best first
    merged = list(whole)
    for person in candidates:
        if not merged or overlap_of_smaller(person.box, np.array([p.box for p in merged])).max() < overlap_threshold:
            merged.append(person)
    return merged
