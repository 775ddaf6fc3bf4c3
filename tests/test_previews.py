"""Pictures in the UI: every preview is inline in the metadata, small enough for the event log."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np

from dagster_aws.s3 import S3Resource

from haic_platform.previews import INLINE_MAX_BYTES, png_metadata
from haic_resources.storage.resource import StorageResource


def test_a_large_contact_sheet_is_shown_inline_scaled_down_and_kept_full_size_on_disk(tmp_path):
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 255, size=(600, 1400, 3), dtype=np.uint8)  # photos compress badly, noise worse
    png = cv2.imencode(".png", noisy)[1].tobytes()
    assert len(png) > 400_000
    exports = StorageResource(home=str(tmp_path), s3=S3Resource()).exports()
    metadata = png_metadata(exports, "human_presence", "src__a.csv", {"dropped clip-1": png})
    markdown = metadata["previews"].value
    inline = base64.b64decode(re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", markdown).group(1))
    assert len(inline) <= INLINE_MAX_BYTES == 60_000
    shown = cv2.imdecode(np.frombuffer(inline, np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape[1] < 1400 and abs(shown.shape[1] / shown.shape[0] - 1400 / 600) < 0.05
    saved = tmp_path / "exports" / "previews" / "human_presence" / "src__a.csv" / "dropped_clip-1.png"
    assert saved.read_bytes() == png
