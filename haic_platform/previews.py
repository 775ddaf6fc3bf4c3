"""Pictures for the Dagster UI: PNGs saved in the exports store and shown inline in metadata.

Contact sheets are also listed in the `contact_sheets` table (one row per item shown), so the
ledger leads to them: `haic why ITEM` prints the sheet of every item on the trail.
"""

from __future__ import annotations

import base64
from typing import Mapping, Sequence

import pandas as pd
from dagster import MetadataValue

from haic_core.decisions import Decision
from haic_resources.storage.object_store import ObjectStore
from haic_resources.storage.tables import TableStore

SHEET_COLUMNS = ["stage", "partition", "item_id", "verdict", "reason_code", "value", "threshold", "reason", "uri"]
# Contact sheets are shown inline as JPEG thumbnails this wide (at most INLINE_MAX_BYTES each).
THUMBNAIL_WIDTH_PX = 720

# The event log keeps every byte of metadata, for every materialization, in the instance's
# database: pictures are shown inline as thumbnails of at most this size, with the full-size
# file in the exports store (its URI beside the thumbnail).
INLINE_MAX_BYTES = 60_000


def png_metadata(exports: ObjectStore, stage: str, partition: str, pngs: dict[str, bytes]) -> dict:
    """Save each PNG under previews/<stage>/<partition>/ and return metadata: one markdown entry
    with the images inline (data URIs, how Dagster's UI shows pictures) and where they are."""
    if not pngs:
        return {}
    prefix = f"previews/{stage}/{partition}"
    parts = []
    for name, png in pngs.items():
        file_name = f"{_safe(name)}.png"
        exports.put_bytes(f"{prefix}/{file_name}", png)
        shown = png if len(png) <= INLINE_MAX_BYTES else _smaller_png(png, INLINE_MAX_BYTES)
        parts.append(f"**{name}** (full size: {exports.uri}/{prefix}/{file_name})\n\n"
                     f"![{name}](data:image/png;base64,{base64.b64encode(shown).decode()})")
    return {"previews": MetadataValue.md("\n\n".join(parts)), "previews_dir": MetadataValue.path(f"{exports.uri}/{prefix}")}


def sheet_metadata(exports: ObjectStore, tables: TableStore, stage: str, partition: str,
                   sheets: Mapping[str, bytes], decisions: Sequence[Decision]) -> dict:
    """Save each item's contact sheet (full size) under previews/<stage>/<partition>/sheets/, list
    them in the `contact_sheets` table, and return metadata: the sheets inline as thumbnails, each
    titled with the item's reason code and numbers and linked to its full size."""
    by_id = {d.item_id: d for d in decisions}
    prefix = f"previews/{stage}/{partition}/sheets"
    rows, parts = [], []
    for item_id, png in sheets.items():
        decision = by_id[item_id]
        key = f"{prefix}/{_safe(item_id)}.png"
        exports.put_bytes(key, png)
        uri = f"{exports.uri}/{key}"
        rows.append({"stage": stage, "partition": partition, "item_id": item_id, "verdict": decision.verdict,
                     "reason_code": decision.code, "value": decision.value, "threshold": decision.threshold,
                     "reason": decision.reason, "uri": uri})
        thumbnail = base64.b64encode(jpeg_thumbnail(png, THUMBNAIL_WIDTH_PX, INLINE_MAX_BYTES)).decode()
        title = decision.verdict if decision.code == decision.verdict else f"{decision.verdict} · {decision.code}"
        parts.append(f"**{title}** {item_id}: {decision.reason} "
                     f"([full size]({uri}))\n\n![{decision.code} {item_id}](data:image/jpeg;base64,{thumbnail})")
    tables.write("contact_sheets", f"{stage}__{partition}", pd.DataFrame(rows, columns=SHEET_COLUMNS).astype(
        {"value": "Float64", "threshold": "Float64"}))
    if not parts:
        return {}
    return {"contact_sheets": MetadataValue.md("\n\n".join(parts)),
            "contact_sheets_dir": MetadataValue.path(f"{exports.uri}/{prefix}")}


def jpeg_thumbnail(png: bytes, width_px: int, max_bytes: int) -> bytes:
    """The picture at most `width_px` wide as a JPEG of at most `max_bytes` (quality lowered, then
    size, until it fits): what the event log keeps of a contact sheet."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    scale = min(1.0, width_px / image.shape[1])
    quality = 85
    while True:
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and (len(encoded) <= max_bytes or scale < 0.1):
            return encoded.tobytes()
        if quality > 50:
            quality -= 15
        else:
            scale *= 0.8


def _smaller_png(png: bytes, max_bytes: int) -> bytes:
    """The same picture, scaled down until its PNG fits in `max_bytes`; the full size stays stored."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    scale = (max_bytes / len(png)) ** 0.5 * 0.9
    while True:
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".png", small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if ok and (len(encoded) <= max_bytes or scale < 0.1):
            return encoded.tobytes()
        scale *= 0.8


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:120]
