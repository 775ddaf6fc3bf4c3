"""The presence/pose step decodes each clip in a killable child: a clip that hangs the decoder
(here a named pipe that never delivers a byte, a file that lies about being a video) is an error
row at its timeout, and the other clips of the partition are decided as usual."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from dagster import DagsterInstance, asset, materialize

from haic_assets.accumulation.human_presence import human_presence
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.resources import build_resources
from haic_platform.settings import Settings
from haic_assets.stages import STAGE_NAMES
from tests.helpers import ledger
from tests.timing import limit

pytestmark = pytest.mark.slow
PARTITION = "phone__uploads.csv"


def test_a_clip_that_hangs_the_decoder_is_an_error_at_its_timeout(tmp_path, monkeypatch, video):
    fifo = tmp_path / "hangs.mp4"
    os.mkfifo(fifo)
    rows = [("phone:juggle-0000000001", "phone:juggle", str(video("sam2_juggle_1p.mp4")), 0.0, 10.29),
            ("phone:hangs-0000000002", "phone:hangs", str(fifo), 0.0, 8.0)]

    @asset(partitions_def=source_shards, io_manager_key="tables", name="clips")
    def stub_clips() -> pd.DataFrame:
        return pd.DataFrame(rows, columns=["clip_id", "video_id", "local_path", "start_s", "end_s"])

    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(source_shards.name, [PARTITION])
    settings = Settings(stages={"human_presence": {"timeout_s": limit(20.0)}})
    result = materialize([stub_clips, human_presence.build(settings)], instance=instance, partition_key=PARTITION,
                         resources=build_resources(STAGE_NAMES), selection=["clips", "human_presence",
                                                                            "person_detections"])
    assert result.success
    book = ledger(tmp_path / "home").set_index("item_id")
    assert book.loc["phone:hangs-0000000002", "verdict"] == "error"
    assert book.loc["phone:hangs-0000000002", "reason"] == f"sampling frames: timed out after {limit(20):g} s"
    assert book.loc["phone:juggle-0000000001", "verdict"] == "kept"
