"""`haic retry`: only the failed items of a partition are retried; items that keep failing are
quarantined (skipped, with the attempts in the reason) until released."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_cli import main as cli
from haic_cli import retry as cli_retry
from haic_platform.retry import (ATTEMPTS_TABLE, empty_attempts, merge_ledger, merge_table, only_items,
                                        plan_retry, record_attempts, release)
from tests.helpers import SAMPLE_MEDIA, dagster_instance, run_partition, without_llm

SPINE = [AssetKey(n) for n in ("raw_metadata", "metadata_filtered", "videos", "clips")]
VOLATILE = ["run_id", "decided_at"]


def book(stage, items, verdicts, reasons=None, partition="p"):
    return pd.DataFrame({"stage": stage, "partition": partition, "item_id": items, "verdict": verdicts,
                         "reason": reasons or ["r"] * len(items), "parent_id": [None] * len(items)})


def test_the_plan_is_the_error_items_less_quarantined_and_shard_errors():
    ledger = pd.concat([book("videos", ["a", "b", "c"], ["kept", "error", "error"]),
                        book("clips", ["a-1", "shard:p"], ["error", "error"]),
                        book("videos", ["z"], ["error"], partition="other")])
    attempts = record_attempts(empty_attempts(), "videos", ["c"], book("videos", ["c"], ["error"], ["boom"]), 1)
    plan = plan_retry(ledger, attempts, "p", stage_order=["videos", "clips"])
    assert plan.retry == {"videos": ["b"], "clips": ["a-1"]} and plan.quarantined == {"videos": ["c"]}
    assert plan_retry(ledger, attempts, "p", stage="clips").retry == {"clips": ["a-1"]}
    released, n = release(attempts, "c")
    assert n == 1 and plan_retry(ledger, released, "p").retry["videos"] == ["b", "c"]


def test_attempts_count_up_to_quarantine_and_a_success_clears_them():
    attempts = empty_attempts()
    for _ in range(2):
        attempts = record_attempts(attempts, "videos", ["b"], book("videos", ["b"], ["error"], ["timeout"]), 3)
    assert attempts[["item_id", "attempts", "quarantined"]].values.tolist() == [["b", 2, False]]
    attempts = record_attempts(attempts, "videos", ["b"], book("videos", ["b"], ["error"], ["timeout"]), 3)
    assert attempts[["attempts", "quarantined", "last_reason"]].values.tolist() == [[3, True, "timeout"]]
    assert record_attempts(attempts, "videos", ["b"], book("videos", ["b"], ["kept"]), 3).empty


def test_merges_keep_every_row_of_the_items_not_retried():
    previous = book("videos", ["a", "b", "c"], ["kept", "dropped", "error"])
    new = book("videos", ["c"], ["kept"], ["fetched"])
    merged = merge_ledger(previous, new, {"c"})
    assert merged[["item_id", "verdict"]].values.tolist() == [["a", "kept"], ["b", "dropped"], ["c", "kept"]]
    clips_before = pd.DataFrame({"clip_id": ["a-1", "a-2"], "video_id": ["a", "a"]})
    clips_new = pd.DataFrame({"clip_id": ["c-1"], "video_id": ["c"]})
    assert merge_table(clips_before, clips_new, {"c"})["clip_id"].tolist() == ["a-1", "a-2", "c-1"]
    assert only_items(pd.DataFrame({"video_id": ["a", "c"]}), {"c"})["video_id"].tolist() == ["c"]


def ledger_rows(home, stage, partition):
    frame = pd.read_parquet(home / "tables" / "ledger" / stage / f"{partition}.parquet")
    return frame.sort_values("item_id").reset_index(drop=True)


@pytest.mark.slow
def test_haic_retry_retries_the_failed_video_quarantines_it_and_releases_it(tmp_path, monkeypatch, capsys):
    home, media = tmp_path / "home", tmp_path / "media"
    monkeypatch.setenv("HAIC_HOME", str(home))
    monkeypatch.delenv("HAIC_PROFILE", raising=False)
    without_llm(monkeypatch)
    media.mkdir()
    monkeypatch.setenv("HAIC_ALLOWED_MEDIA_ROOTS", str(media))
    shutil.copyfile(SAMPLE_MEDIA / "sam2_juggle_1p.mp4", media / "sam2_juggle_1p.mp4")
    landing = home / "landing" / "webvid_retry"
    landing.mkdir(parents=True)
    (landing / "source.yaml").write_text(f"kind: webvid\nmedia_root: {media}\n")
    (landing / "shard.csv").write_text(
        "videoid,contentUrl,duration,page_dir,name,width,height\n"
        "1001,sam2_juggle_1p.mp4,PT00H00M10S,s/j,Young man juggling a football with his feet in a park,1280,720\n"
        "1009,later.mp4,PT00H00M09S,s/l,Woman plays with her dog and throws a stick on the lawn,1280,720\n")
    partition = "webvid_retry__shard.csv"
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, partition, selection=SPINE).success
    first = ledger_rows(home, "videos", partition)
    assert first[["item_id", "verdict"]].values.tolist() == [["webvid_retry:1001", "kept"],
                                                            ["webvid_retry:1009", "error"]]

    original = cli_retry.execute_main_job

    def execute(defs, instance, key, selection, tags):  # the retry's run, limited to the spine here
        assert {k.to_user_string() for k in selection} >= {"videos", "clips"} and tags["haic/retry"] == "true"
        return original(defs, instance, key, [k for k in selection if k in SPINE], tags)

    monkeypatch.setattr(cli_retry, "execute_main_job", execute)
    capsys.readouterr()
    assert cli.main(["retry", partition, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("videos: retry 1: webvid_retry:1009")
    for attempt in (1, 2):  # the file is still missing: two failed attempts quarantine it
        assert cli.main(["retry", partition, "--max-attempts", "2"]) == 0
    after = ledger_rows(home, "videos", partition)
    assert after.loc[1, "verdict"] == "error"
    assert after.loc[1, "reason"].startswith("quarantined after 2 attempts: ")
    # every kept row is kept, with its decision (only the run that re-decided it differs)
    pd.testing.assert_frame_equal(after.loc[[0]].drop(columns=VOLATILE), first.loc[[0]].drop(columns=VOLATILE))
    assert not after.duplicated(["stage", "item_id"]).any()
    capsys.readouterr()
    assert cli.main(["retry", partition]) == 0
    assert "nothing to retry (only quarantined items" in capsys.readouterr().out

    shutil.copyfile(SAMPLE_MEDIA / "sam2_dog_1p.mp4", media / "later.mp4")  # the cause is fixed
    assert cli.main(["retry", "--release", "webvid_retry:1009"]) == 0
    assert cli.main(["retry", partition]) == 0
    final = ledger_rows(home, "videos", partition)
    assert final[["item_id", "verdict"]].values.tolist() == [["webvid_retry:1001", "kept"],
                                                            ["webvid_retry:1009", "kept"]]
    assert pd.read_parquet(home / "tables" / ATTEMPTS_TABLE / f"{partition}.parquet").empty
    clips = pd.read_parquet(home / "tables" / "clips" / f"{partition}.parquet")
    assert set(clips["video_id"]) == {"webvid_retry:1001", "webvid_retry:1009"}
