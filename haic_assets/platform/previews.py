"""Pictures for the Dagster UI: PNGs saved under HAIC_HOME/exports and shown inline in metadata."""

import base64

from dagster import MetadataValue

from haic_resources.storage.resource import StorageResource


def png_metadata(storage: StorageResource, stage: str, partition: str, pngs: dict[str, bytes],
                 inline_max_bytes: int = 400_000) -> dict:
    """Save each PNG and return metadata: one markdown entry with the images inline (data URIs,
    how Dagster's UI shows pictures) and the folder they were saved to."""
    if not pngs:
        return {}
    folder = storage.layout.exports / "previews" / stage / partition
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for name, png in pngs.items():
        path = folder / f"{_safe(name)}.png"
        path.write_bytes(png)
        shown = png if len(png) <= inline_max_bytes else _smaller_png(png, inline_max_bytes)
        parts.append(f"**{name}** ({path.name})\n\n![{name}](data:image/png;base64,{base64.b64encode(shown).decode()})")
    return {"previews": MetadataValue.md("\n\n".join(parts)), "previews_dir": MetadataValue.path(str(folder))}


def _smaller_png(png: bytes, max_bytes: int) -> bytes:
    """The same picture, scaled down until its PNG fits in `max_bytes` (the event log keeps it);
    the full-size file stays in the previews folder."""
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

