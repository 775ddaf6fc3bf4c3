"""Contact sheet: the sampled frames of one clip with boxes and COCO skeletons, and a caption.

Meant for asset metadata (a reviewer sees at a glance why a clip was kept or dropped). Pure
drawing with cv2; returns PNG bytes, or writes them when a path is given.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from haic_resources.pose.estimator import COCO_SKELETON, Person

# Distinct colours (RGB) per track id / person index.
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]  # fmt: skip


def draw_people(
    image: np.ndarray,
    people: list[Person],
    track_ids: list[int] | None = None,
    min_keypoint_score: float = 0.3,
    scale: float = 1.0,
) -> np.ndarray:
    """A copy of `image` (RGB uint8) with each person's box, skeleton and score drawn; `scale` maps
    the people's pixels to the image's (for people measured on a larger copy of the frame)."""
    out = np.ascontiguousarray(image.copy())
    thick = max(1, round(max(out.shape[:2]) / 300))
    for k, person in enumerate(people):
        key = track_ids[k] if track_ids is not None else k
        color = PALETTE[int(key) % len(PALETTE)]
        x0, y0, x1, y1 = (int(round(v)) for v in person.box * scale)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thick)
        label = f"{'#' + str(key) + ' ' if track_ids is not None else ''}{person.score:.2f}"
        cv2.putText(out, label, (x0 + 2, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.35 * thick, color, 1, cv2.LINE_AA)
        ok = person.keypoint_scores >= min_keypoint_score
        pts = np.round(person.keypoints * scale).astype(int)
        for a, b in COCO_SKELETON:
            if ok[a] and ok[b]:
                cv2.line(out, tuple(pts[a]), tuple(pts[b]), color, thick, cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            cv2.circle(out, tuple(pts[j]), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return out


def contact_sheet(
    images: list[np.ndarray],
    people_per_frame: list[list[Person]],
    caption: str,
    labels: list[str] | None = None,
    track_ids_per_frame: list[list[int]] | None = None,
    columns: int = 4,
    tile_width: int = 320,
    path: str | os.PathLike | None = None,
    people_width: int | None = None,
) -> bytes | Path:
    """Grid of annotated frames with a caption (e.g. verdict and measured values) on top.

    images: RGB uint8 frames; people in the pixels of each image, or of a frame `people_width`
    wide when the images are shrunk copies (`ClipPeople.width`); labels: one line per tile (e.g.
    its timestamp). Returns PNG bytes, or the written path when `path` is given.
    """
    if len(images) != len(people_per_frame):
        raise ValueError("one list of people per image is needed")
    if not images:
        raise ValueError("a contact sheet needs at least one frame")
    tiles = []
    for i, (img, people) in enumerate(zip(images, people_per_frame)):
        ids = track_ids_per_frame[i] if track_ids_per_frame is not None else None
        people_scale = img.shape[1] / people_width if people_width else 1.0
        drawn = draw_people(img, people, ids, scale=people_scale)
        scale = tile_width / drawn.shape[1]
        tile = cv2.resize(drawn, (tile_width, max(1, round(drawn.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        if labels is not None:
            cv2.putText(tile, labels[i], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    tile_h = max(t.shape[0] for t in tiles)
    columns = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    # Caption lines wrapped to the sheet width (about 7 px per character at this font size).
    width = columns * tile_width
    per_line = max(20, width // 7)
    lines = [caption[i : i + per_line] for i in range(0, len(caption), per_line)] or [""]
    header = 8 + 18 * len(lines)
    sheet = np.zeros((header + rows * tile_h, width, 3), dtype=np.uint8)
    for n, line in enumerate(lines):
        cv2.putText(sheet, line, (6, 18 + 18 * n), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = header + r * tile_h, c * tile_width
        sheet[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    if path is None:
        return png.tobytes()
    path = Path(path)
    path.write_bytes(png.tobytes())
    return path
