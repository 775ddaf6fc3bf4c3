"""Issue 23 item 2: data that changes after it landed. A shard replaced or appended after it was
curated is curated again, the old rows keep their lineage, and a shard still being written is not
read until it is complete. Driven as the daemon drives it: the landing sensor's ticks (at chosen
times: a tick is a function of the landing zone and the clock) and the observations they report,
the recuration_sensor's ticks (its automation conditions see a new version), runs of the requests
they return, and `haic recurate --dry-run` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from dagster import AssetKey, build_sensor_context

from haic_assets.definitions import build_definitions
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.sensors import landing_tick
from haic_platform.settings import PlatformSettings
from tests.helpers import REPO_ROOT, SAMPLE_MEDIA, dagster_instance, ledger, without_llm

SPINE = [AssetKey("raw_metadata"), AssetKey("metadata_filtered")]
# A shard's run without an LLM backend: the accumulation stages, in pipeline order.
ACCUMULATION = ["raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "person_detections",
                "pose_tracks", "action_filtered"]
HEADER = "videoid,contentUrl,duration,page_dir,name,width,height\n"
PARTITION = "webvid_land__r.csv"


def rows(ids) -> str:
    return "".join(f"{i},sam2_juggle_1p.mp4,PT00H00M10S,p/{i},A young man is juggling a football in the park,1280,720\n"
                   for i in ids)


def landing(home: Path) -> Path:
    folder = home / "landing" / "webvid_land"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "source.yaml").write_text(f"kind: webvid\nmedia_root: {SAMPLE_MEDIA}\n")
    return folder


def aged(path: Path, seconds: float) -> float:
    """Make `path` look last written `seconds` ago; returns its modification time."""
    when = time.time() - seconds
    os.utime(path, (when, when))
    return when


def tick(defs, instance, cursor, now_s: float, platform=PlatformSettings()):
    with build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor, definitions=defs) as context:
        return landing_tick(context, defs.resources["storage"], platform, now_s)


def recuration_tick(defs, instance, cursor):
    """One tick of the recuration_sensor, evaluated as the daemon evaluates it (in the code location)."""
    with build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        return defs.resolve_sensor_def("recuration_sensor").evaluate_tick(context)


def run_requests(defs, instance, result) -> None:
    """What the daemon does with a tick's result: partitions, observations, then the runs (here of the spine)."""
    for request in getattr(result, "dynamic_partitions_requests", None) or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for event in getattr(result, "asset_events", None) or []:
        instance.report_runless_asset_event(event)
    for request in result.run_requests:
        run = defs.resolve_job_def("curate_source").execute_in_process(
            partition_key=request.partition_key, tags=request.tags, instance=instance, asset_selection=SPINE,
            raise_on_error=False)
        assert run.success


def haic(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.run([sys.executable, "-m", "haic_cli", *args], env={**env, "HAIC_HOME": str(home)},
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def spine_staleness(dry_run: str) -> list[str]:
    """The lines of `haic recurate --dry-run` about the two stages these tests run (the later ones
    are never materialized here)."""
    return [line for line in dry_run.splitlines() if line.strip().startswith(("raw_metadata:", "metadata_filtered:"))]


def test_a_replaced_shard_is_curated_again_and_the_old_rows_keep_their_lineage(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    shard = landing(home) / "r.csv"
    shard.write_text(HEADER + rows(range(1, 7)))
    aged(shard, 120)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        first = tick(defs, instance, None, time.time())
        assert [(r.partition_key, r.run_key) for r in first.run_requests] == [
            (PARTITION, f"landing:{PARTITION}:{first.asset_events[0].tags['dagster/data_version']}")]
        # No LLM backend here: the new shard's run is the accumulation, not the caption stages.
        assert sorted(k.to_user_string() for k in first.run_requests[0].asset_selection) == sorted(ACCUMULATION)
        (observed,) = first.asset_events
        old_version = observed.tags["dagster/data_version"]
        assert old_version.startswith("sha256:") and len(old_version) == len("sha256:") + 64
        run_requests(defs, instance, first)
        automation = recuration_tick(defs, instance, None)
        assert not automation.run_requests  # a new shard is the landing sensor's run, never a second one
        assert not tick(defs, instance, first.cursor, time.time()).run_requests  # nothing new: nothing to do
        assert spine_staleness(haic(home, "recurate", "--dry-run").stdout) == []

        shard.write_text(HEADER + rows(range(101, 107)))  # the provider re-delivers the shard
        aged(shard, 120)
        second = tick(defs, instance, first.cursor, time.time())
        (observed,) = second.asset_events
        new_version = observed.tags["dagster/data_version"]
        assert new_version != old_version
        assert not second.run_requests and not second.dynamic_partitions_requests  # re-curation's, not the sensor's
        run_requests(defs, instance, second)  # the daemon records the observation of the new version
        dry = haic(home, "recurate", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert spine_staleness(dry.stdout) == [
            f"  raw_metadata: landing file changed since it was read ({old_version} -> {new_version})",
            "  metadata_filtered: upstream raw_metadata is stale"]
        # The recuration_sensor's next tick re-curates the shard at once (no scheduled pass needed):
        # raw_metadata for the new version, and every stage after it in the same run.
        automation = recuration_tick(defs, instance, automation.cursor)
        assert [(r.partition_key, sorted(k.to_user_string() for k in r.asset_selection))
                for r in automation.run_requests] == [(PARTITION, sorted(ACCUMULATION))]
        run_requests(defs, instance, automation)
        assert not recuration_tick(defs, instance, automation.cursor).run_requests  # once per version
        assert spine_staleness(haic(home, "recurate", "--dry-run").stdout) == []

    book = ledger(home)
    raw = book[book["stage"] == "raw_metadata"].set_index("item_id")
    assert sorted(raw.index) == sorted([f"webvid_land:{i}" for i in (*range(1, 7), *range(101, 107))])
    assert set(raw.loc[[f"webvid_land:{i}" for i in range(101, 107)], "verdict"]) == {"kept"}
    old = raw.loc[[f"webvid_land:{i}" for i in range(1, 7)]]
    assert set(old["verdict"]) == {"dropped"} and set(old["reason_code"]) == {"superseded"}
    assert set(old["reason"]) == {f"no longer in landing/webvid_land/r.csv: the file changed ({old_version} -> "
                                  f"{new_version})"}
    details = [json.loads(d) for d in old["detail"]]
    assert {(d["landing_version"], d["superseded_by"], d["previous_verdict"]) for d in details} == {
        (old_version, new_version, "kept")}
    versions = {json.loads(d)["landing_version"] for d in raw.loc[[f"webvid_land:{i}" for i in range(101, 107)],
                                                                         "detail"]}
    assert versions == {new_version}  # every row says which version of the file it came from
    filtered = book[book["stage"] == "metadata_filtered"]
    assert sorted(filtered["item_id"]) == [f"webvid_land:{i}" for i in range(101, 107)]
    table = pd.read_parquet(home / "tables" / "metadata_filtered" / f"{PARTITION}.parquet")
    assert sorted(table["video_id"]) == [f"webvid_land:{i}" for i in range(101, 107)]
    why = haic(home, "why", "webvid_land:3")
    assert why.returncode == 0 and "raw_metadata       video  webvid_land:3" in why.stdout
    assert f"DROPPED  superseded: no longer in landing/webvid_land/r.csv" in why.stdout


def test_a_shard_being_written_is_read_only_once_complete(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    shard = landing(home) / "r.csv"
    shard.write_text(HEADER + rows([1, 2]))  # the producer has written two rows so far
    written = aged(shard, 5)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        early = tick(defs, instance, None, written + 5)
        assert not early.run_requests and not early.dynamic_partitions_requests and not early.asset_events
        assert early.skip_reason.skip_message == "1 shard(s) still being written"
        with shard.open("a") as out:  # ... and four more rows
            out.write(rows([3, 4, 5, 6]))
        appended = aged(shard, 1)
        still = tick(defs, instance, early.cursor, appended + 59)
        assert not still.run_requests
        done = tick(defs, instance, still.cursor, appended + 60)
        assert [r.partition_key for r in done.run_requests] == [PARTITION]
        run_requests(defs, instance, done)
    table = pd.read_parquet(home / "tables" / "raw_metadata" / f"{PARTITION}.parquet")
    assert sorted(table["native_id"]) == ["1", "2", "3", "4", "5", "6"]


def test_a_marker_makes_a_shard_complete_at_once_and_can_be_required(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    folder = landing(home)
    shard = folder / "r.csv"
    shard.write_text(HEADER + rows([1, 2, 3]))
    now = aged(shard, 0)
    strict = PlatformSettings(landing_require_marker=True)
    defs = build_definitions()
    with dagster_instance(home) as instance:
        assert not tick(defs, instance, None, now + 3600, strict).run_requests  # quiet for an hour: no marker
        (folder / "r.csv.complete").write_text("")
        marked = tick(defs, instance, None, now + 1, strict)
        assert [r.partition_key for r in marked.run_requests] == [PARTITION]
        assert not marked.asset_events[0].tags["dagster/data_version"].startswith("etag:")
    assert instance is not None and source_shards.name == "source_shards"


def test_an_s3_landing_zone_versions_shards_by_etag_and_waits_for_them_alike(tmp_path, monkeypatch):
    """The same rules on S3 (moto's server on 127.0.0.1): a shard's version is its ETag and size, a
    re-uploaded shard has another, and one without its marker waits for the quiet period."""
    import boto3
    from moto.server import ThreadedMotoServer

    from haic_resources.storage.landing import LandingVersions, list_landed, waiting_reason
    from haic_resources.storage.object_store import S3ObjectStore

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
        client.create_bucket(Bucket="land")
        store = S3ObjectStore("s3://land/landing", client)
        client.put_object(Bucket="land", Key="landing/webvid_land/r.csv", Body=(HEADER + rows([1, 2])).encode())
        client.put_object(Bucket="land", Key="landing/webvid_land/source.yaml", Body=b"kind: webvid\n")
        (item,), skipped = list_landed(store)
        assert (item.shard.partition_key, item.marked, skipped) == (PARTITION, False, {})
        assert waiting_reason(item, item.stat.modified_s + 10, 60, False).startswith("written 10 s ago")
        assert waiting_reason(item, item.stat.modified_s + 60, 60, False) is None
        first = LandingVersions(store).version(item.shard.key, item.stat)
        etag = client.head_object(Bucket="land", Key="landing/webvid_land/r.csv")["ETag"].strip('"')
        assert first == f"etag:{etag}:{item.stat.size}"
        client.put_object(Bucket="land", Key="landing/webvid_land/r.csv", Body=(HEADER + rows(range(1, 7))).encode())
        client.put_object(Bucket="land", Key="landing/webvid_land/r.csv.complete", Body=b"")
        (item,), _ = list_landed(store)
        assert item.marked and waiting_reason(item, item.stat.modified_s, 60, True) is None
        assert LandingVersions(store).version(item.shard.key, item.stat) not in (first, None)
    finally:
        server.stop()
