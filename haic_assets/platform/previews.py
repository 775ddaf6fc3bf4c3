"""Pictures for the Dagster UI: PNGs saved in the exports store and shown inline in metadata."""

from __future__ import annotations

import base64

from dagster import MetadataValue

from haic_resources.storage.object_store import ObjectStore

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
