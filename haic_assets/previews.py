"""Pictures for the Dagster UI: PNGs saved under HAIC_HOME/exports and shown inline in metadata."""

import base64

from dagster import MetadataValue

from haic_resources.storage import StorageResource


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
        if len(png) <= inline_max_bytes:
            parts.append(f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode()})")
        else:
            parts.append(f"**{name}**: {path} ({len(png) // 1024} KiB, too large to show inline)")
    return {"previews": MetadataValue.md("\n\n".join(parts)), "previews_dir": MetadataValue.path(str(folder))}


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:120]

