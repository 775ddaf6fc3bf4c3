"""Record the decision ledger of the main job on the bundled sample and on every clip of
../shared/media, as the comparison point for redesigns that must not change any decision.

    uv run python -m tests.golden.record_ledger     # rewrites tests/golden/ledger_*.csv

The committed files were recorded before the stage-factory redesign (issue 16);
tests/test_ledger_golden.py runs the same job today and compares item by item. Re-record only
when a change is meant to alter decisions, and say so in the commit.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

GOLDEN_DIR = Path(__file__).resolve().parent
# What a decision is: the item, its verdict, the reason, the measured value and the threshold.
COMPARED = ["stage", "item_id", "item_kind", "parent_id", "verdict", "reason", "metric", "value", "threshold"]
SHARED_SOURCE_YAML = "kind: generic\ncolumns: {{id: file, description: description, uri: file}}\nmedia_root: {media}\n"


def land_shared_listing(home: Path, media_videos: Path) -> str:
    """One partition listing every video of the shared media folder (a generic source)."""
    folder = home / "landing" / "shared"
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(p.name for p in media_videos.iterdir())
    pd.DataFrame({"file": files, "description": "A person moves in front of the camera"}).to_csv(
        folder / "listing.csv", index=False)
    (folder / "source.yaml").write_text(SHARED_SOURCE_YAML.format(media=media_videos))
    return "shared__listing.csv"


def decisions_of(ledger: pd.DataFrame) -> pd.DataFrame:
    """The compared columns, in a stable order."""
    frame = ledger[COMPARED].copy()
    return frame.sort_values(["stage", "item_id"]).reset_index(drop=True)


def _record(name: str, land) -> None:
    from tests.helpers import dagster_instance, ledger, run_partition

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["HAIC_HOME"] = str(home)
        partition = land(home)
        from haic_assets.definitions import build_definitions

        defs = build_definitions()
        with dagster_instance(home) as instance:
            assert run_partition(defs, instance, partition).success
        decisions_of(ledger(home)).to_csv(GOLDEN_DIR / f"ledger_{name}.csv", index=False)
        print(f"recorded {name}: {len(ledger(home))} rows")


def main() -> int:
    from tests.conftest import SHARED_MEDIA
    from tests.helpers import land_sample

    for name in ("GEMINI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "HAIC_LLM_PROVIDER"):
        os.environ.pop(name, None)
    _record("sample", land_sample)
    os.environ["HAIC_ALLOWED_MEDIA_ROOTS"] = str(SHARED_MEDIA / "videos")  # source.yaml may not widen the roots
    _record("shared_media", lambda home: land_shared_listing(home, SHARED_MEDIA / "videos"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
