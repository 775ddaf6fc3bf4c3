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


def new_tile_finds(whole_boxes: np.ndarray, tiles: list[tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]],
                   height: int, width: int, nms_iou: float,
                   overlap_threshold: float = OVERLAP_THRESHOLD) -> list[tuple[int, int]]:
    """(tile, index) of the tile finds that are nobody already counted, best first.

    `tiles` are (window, boxes in frame pixels, scores); a find cut by its tile is dropped, finds seen in
    two tiles are one (NMS at `nms_iou`), and a find mostly inside a whole-frame box or an earlier kept find
    is that person."""
    candidates = [(t, k) for t, (window, boxes, _) in enumerate(tiles) for k, box in enumerate(boxes)
                  if not cut_by_tile(box, window, height, width)]
    if not candidates:
        return []
    boxes = np.array([tiles[t][1][k] for t, k in candidates], dtype=np.float64).reshape(-1, 4)
    scores = np.array([tiles[t][2][k] for t, k in candidates], dtype=np.float64)
    kept_boxes = list(np.asarray(whole_boxes, dtype=np.float64).reshape(-1, 4))
    found = []
    for i in nms(boxes, scores, nms_iou):  # best first
        if not kept_boxes or overlap_of_smaller(boxes[i], np.array(kept_boxes)).max() < overlap_threshold:
            kept_boxes.append(boxes[i])
            found.append(candidates[i])
    return found


def merge_tile_people(whole: list[Person], tiles: list[tuple[tuple[int, int, int, int], list[Person]]],
                      height: int, width: int, nms_iou: float,
                      overlap_threshold: float = OVERLAP_THRESHOLD) -> list[Person]:
    """The whole frame's people, then the tile people (frame pixels) that are nobody already counted."""
    as_boxes = [(window, np.array([p.box for p in people]).reshape(-1, 4), np.array([p.score for p in people]))
                for window, people in tiles]
    found = new_tile_finds(np.array([p.box for p in whole]).reshape(-1, 4), as_boxes, height, width, nms_iou,
                           overlap_threshold)
    return list(whole) + [tiles[t][1][k] for t, k in found]
