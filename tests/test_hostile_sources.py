"""Issue 12: what a data provider (or an attacker) can put in the landing zone or on the command
line must stay inside its store and become ledger rows, never a crash or a file elsewhere.

Each test drives the real job (or `haic`) the way a user would and asserts the exact ledger rows
and files on disk.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_cli import main as cli
from haic_cli.sources import add_shard
from haic_resources.storage.files import TEMP_PREFIX
from tests.helpers import (SAMPLE_MEDIA, SAMPLE_PARTITION, dagster_instance, land_sample, ledger, run_partition,
                           without_llm)

SPINE = [AssetKey("raw_metadata"), AssetKey("metadata_filtered")]
ACQUIRE = SPINE + [AssetKey("videos")]
GENERIC_YAML = "kind: generic\ncolumns: {{id: key, description: caption, uri: url, duration: secs}}\nmedia_root: {root}\n"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HAIC_ALLOWED_MEDIA_ROOTS", raising=False)
    without_llm(monkeypatch)
    return tmp_path / "home"


def land(home: Path, source: str, shard: str, content: bytes, source_yaml: str | None) -> str:
    folder = home / "landing" / source
    folder.mkdir(parents=True, exist_ok=True)
    (folder / shard).write_bytes(content)
    if source_yaml is not None:
        (folder / "source.yaml").write_text(source_yaml)
    return f"{source}__{shard}"


def run(home: Path, partition: str, selection=SPINE):
    with dagster_instance(home) as instance:
        return run_partition(build_definitions(), instance, partition, selection=selection)


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def ledger_rows(home: Path, stage: str | None = None) -> list[tuple]:
    book = ledger(home)
    if stage:
        book = book[book["stage"] == stage]
    return [(r.stage, r.item_id, r.verdict, r.reason) for r in book.itertuples()]


# -- item 2: partition keys are validated before any path is made of them ---------------------

TRAVERSAL_KEY = f"zz__x/../../metadata_filtered/{SAMPLE_PARTITION}"


def test_haic_run_refuses_a_partition_key_that_climbs_into_another_partitions_ledger(home, capsys):
    land_sample(home)
    assert run(home, SAMPLE_PARTITION).success
    before = files_under(home / "tables")
    assert f"ledger/metadata_filtered/{SAMPLE_PARTITION}.parquet" in before

    capsys.readouterr()  # the first run's Dagster log
    assert cli.main(["run", TRAVERSAL_KEY]) == 2
    assert capsys.readouterr().err == (
        f"haic run: partition key {TRAVERSAL_KEY!r}: shards live directly in landing/<source>/\n")
    assert files_under(home / "tables") == before


def test_a_traversal_key_registered_behind_haics_back_writes_nothing(home):
    land_sample(home)
    assert run(home, SAMPLE_PARTITION).success
    before = files_under(home / "tables")
    result = run(home, TRAVERSAL_KEY)  # the key made a partition directly in Dagster
    assert not result.success
    assert files_under(home / "tables") == before


def test_add_shard_refuses_a_file_name_no_partition_may_have(home, tmp_path):
    bad = tmp_path / "weird name.csv"
    bad.write_text("videoid,name\n1,x\n")
    with pytest.raises(ValueError, match="shard file 'weird name.csv': use letters"):
        add_shard(bad, "webvid")
    assert not (home / "landing").exists()


# -- item 3: media roots come from the deployment, never from the landing zone ---------------

def test_a_media_root_outside_the_allowed_roots_is_a_shard_error_and_nothing_is_copied(home):
    csv = b"key,caption,url,secs\nenv,A man reads the environment,/proc/self/environ,5\n"
    partition = land(home, "evil", "rows.csv", csv, GENERIC_YAML.format(root="/"))
    result = run(home, partition, selection=ACQUIRE)
    assert not result.success
    assert ledger_rows(home) == [
        ("raw_metadata", f"shard:{partition}", "error",
         "landing/evil/source.yaml: media_root '/' is outside the allowed media roots (HAIC_ALLOWED_MEDIA_ROOTS)")]
    assert not (home / "media").exists()


def test_haic_home_is_no_media_root_only_its_media_store_is(home, tmp_path):
    """A row may not read the deployment's own files (settings, Dagster storage, other shards) as media."""
    home.mkdir(parents=True)
    (home / "settings.yaml").write_text("videos: {workers: 1}\n")
    csv = (f"key,caption,url,secs\nsettings,A man reads the settings,{home}/settings.yaml,5\n"
           f"shard,A man reads a shard,{home}/landing/mine/rows.csv,5\n").encode()
    partition = land(home, "mine", "rows.csv", csv, GENERIC_YAML.format(root=SAMPLE_MEDIA))
    assert run(home, partition, selection=SPINE[:1]).success
    assert ledger_rows(home, "raw_metadata") == [
        ("raw_metadata", "mine:settings", "dropped", f"local uri '{home}/settings.yaml' resolves outside the allowed roots"),
        ("raw_metadata", "mine:shard", "dropped", f"local uri '{home}/landing/mine/rows.csv' resolves outside the "
                                                  "allowed roots")]
    yaml_home = GENERIC_YAML.format(root=home)
    partition = land(home, "own", "rows.csv", csv, yaml_home)
    assert not run(home, partition, selection=SPINE[:1]).success
    assert [r[1:] for r in ledger_rows(home, "raw_metadata") if r[1].startswith("shard:")] == [(
        f"shard:{partition}", "error", f"landing/own/source.yaml: media_root '{home}' is outside the allowed media roots "
                 "(HAIC_ALLOWED_MEDIA_ROOTS)")]


def test_an_allowed_root_comes_from_haic_allowed_media_roots(home, tmp_path, monkeypatch):
    media = tmp_path / "incoming"
    media.mkdir()
    (media / "juggle.mp4").write_bytes((SAMPLE_MEDIA / "sam2_juggle_1p.mp4").read_bytes())
    (media / "page.mp4").write_text("<html><body>404 Not Found</body></html>\n" * 20)
    csv = b"key,caption,url,secs\njuggle,A man juggles a ball,juggle.mp4,10\npage,A man runs away,page.mp4,6.67\n"
    partition = land(home, "mine", "rows.csv", csv, GENERIC_YAML.format(root=media))
    monkeypatch.setenv("HAIC_ALLOWED_MEDIA_ROOTS", str(media))
    assert run(home, partition, selection=ACQUIRE).success
    assert ledger_rows(home, "raw_metadata") == [("raw_metadata", "mine:juggle", "kept", "parsed"),
                                                  ("raw_metadata", "mine:page", "kept", "parsed")]
    videos = {r[1]: r[2:] for r in ledger_rows(home, "videos")}
    assert videos["mine:juggle"][0] == "kept"
    assert videos["mine:page"] == ("error", "not a readable media file: FFmpeg found invalid data "
                                            "(truncated, corrupt or not a video)")
    # Local sources are read in place (#17): nothing is copied, the page that failed the probe is left
    # where it is, and the media store holds only hash records, not world-readable.
    table = build_definitions().resources["storage"].tables().read("videos", partition)
    assert table["local_path"].tolist() == [str(media / "juggle.mp4")]
    assert (media / "page.mp4").exists() and not (home / "media" / "videos").exists()
    stored = list((home / "media" / "sources").iterdir())
    assert len(stored) == 1  # the juggle's record; the page's was removed with its failed probe
    assert all(stat.S_IMODE(os.stat(p).st_mode) & 0o007 == 0 for p in stored)
    durations = build_definitions().resources["storage"].tables().read("raw_metadata", partition)
    assert durations.set_index("video_id")["duration_s"].to_dict() == {"mine:juggle": 10.0, "mine:page": 6.67}


# -- item 12: source.yaml mistakes are one shard error naming the file and the key ------------

@pytest.mark.parametrize("source_yaml, reason", [
    ("kind: webvid\nmedia_root: [unclosed\n",
     "landing/bad/source.yaml: not valid YAML (line 3, column 1): expected ',' or ']', but got '<stream end>'"),
    ("kind: webvid\ncolums: {id: key}\n", "landing/bad/source.yaml: colums: Extra inputs are not permitted"),
    ("kind: webvid\nmedia_root: [1, 2]\n", "landing/bad/source.yaml: media_root: Input should be a valid string"),
    ("kind: youtube\n", "landing/bad/source.yaml: kind: Input should be 'webvid', 'omega' or 'generic'"),
    ("kind: generic\ncolumns: {id: key, description: caption, url: u}\n",
     "landing/bad/source.yaml: columns.url: Extra inputs are not permitted"),
    ("- kind: webvid\n", "landing/bad/source.yaml: expected a mapping of kind, columns, media_root; got list"),
])
def test_a_malformed_source_yaml_is_one_shard_error_naming_file_and_key(home, source_yaml, reason):
    partition = land(home, "bad", "rows.csv", b"videoid,contentUrl,name\n1,a.mp4,A man runs\n", source_yaml)
    result = run(home, partition)
    assert not result.success
    assert ledger_rows(home) == [("raw_metadata", f"shard:{partition}", "error", reason)]


# -- item 7: one bad row, text or shard costs only itself --------------------------------------

def test_invalid_utf8_is_replaced_and_the_rows_it_was_in_are_recorded(home):
    csv = (b"videoid,contentUrl,duration,name\n"
           b"1,sam2_juggle_1p.mp4,PT10S,Caf\xe9 owner juggles a ball\n"
           b"2,sam2_dog_1p.mp4,PT9S,Woman throws a stick\n")
    partition = land(home, "webvid_utf8", "rows.csv", csv, f"kind: webvid\nmedia_root: {SAMPLE_MEDIA}\n")
    assert run(home, partition).success
    assert ledger_rows(home, "raw_metadata") == [
        ("raw_metadata", "webvid_utf8:1", "kept", "parsed; invalid UTF-8 bytes replaced by U+FFFD"),
        ("raw_metadata", "webvid_utf8:2", "kept", "parsed")]
    table = build_definitions().resources["storage"].tables().read("raw_metadata", partition)
    assert table["description"].tolist() == ["Caf\ufffd owner juggles a ball", "Woman throws a stick"]


def test_a_shard_whose_every_row_is_dropped_gives_an_empty_filtered_table(home):
    csv = b"videoid,contentUrl,duration,name\n1,sam2_juggle_1p.mp4,ten seconds,A man juggles\n"
    partition = land(home, "webvid_none", "rows.csv", csv, f"kind: webvid\nmedia_root: {SAMPLE_MEDIA}\n")
    assert run(home, partition).success
    assert ledger_rows(home) == [("raw_metadata", "webvid_none:1", "dropped", "unparseable duration 'ten seconds'")]
    table = build_definitions().resources["storage"].tables().read("metadata_filtered", partition)
    assert len(table) == 0 and "resolution_deferred" in table.columns


def test_a_description_over_spacys_limit_is_tested_on_its_start_and_says_so(home, tmp_path):
    long_text = "A man juggles a ball in the park. " + "x" * 1_000_000
    frame = pd.DataFrame({"videoid": ["1", "2"], "contentUrl": ["sam2_juggle_1p.mp4", "sam2_dog_1p.mp4"],
                          "duration": ["PT10S", "PT9S"], "name": [long_text, "Woman throws a stick"]})
    frame.to_csv(tmp_path / "rows.csv", index=False)
    partition = land(home, "webvid_long", "rows.csv", (tmp_path / "rows.csv").read_bytes(),
                     f"kind: webvid\nmedia_root: {SAMPLE_MEDIA}\n")
    assert run(home, partition).success
    assert ledger_rows(home, "metadata_filtered") == [
        ("metadata_filtered", "webvid_long:1", "kept", f"has a verb (in its first 100000 of {len(long_text)} "
                                                       "characters); resolution unknown: deferred to the video probe"),
        ("metadata_filtered", "webvid_long:2", "kept", "has a verb; resolution unknown: deferred to the video probe")]


# -- item 9: the longest video accepted is a setting, its drops carry the value ---------------

def test_videos_longer_than_max_duration_are_dropped_with_their_duration(home):
    land_sample(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.yaml").write_text("videos: {max_duration_s: 10}\n")
    assert run(home, SAMPLE_PARTITION, selection=ACQUIRE).success
    book = ledger(home)
    videos = book[book["stage"] == "videos"].set_index("item_id")
    juggle = videos.loc["webvid_sample:1001"]
    assert (juggle.verdict, juggle.reason, juggle.metric, juggle.threshold) == (
        "dropped", "video 10.29 s > 10 s", "duration_s", 10.0)
    assert juggle.value == pytest.approx(10.2917, abs=1e-4)
    assert videos.loc["webvid_sample:1002", "verdict"] == "kept"


def test_no_temporary_file_is_left_in_the_media_store(home):
    land_sample(home)
    assert run(home, SAMPLE_PARTITION, selection=ACQUIRE).success
    assert not [p for p in (home / "media").rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_a_metadata_id_that_climbs_out_cannot_place_its_clip_outside_the_media_store(home, tmp_path, monkeypatch):
    target = tmp_path / "x" / "pwn"
    evil_id = "/.." * 12 + str(target)
    csv = f"key,caption,url,secs\n{evil_id},A young man juggles a football with his feet,sam2_juggle_1p.mp4,10\n"
    partition = land(home, "evil", "rows.csv", csv.encode(), GENERIC_YAML.format(root=SAMPLE_MEDIA))
    assert run(home, partition, selection=None).success
    book = ledger(home)
    final = book[book["stage"] == "action_filtered"]
    assert final["verdict"].tolist() == ["kept"] and final["parent_id"].tolist() == [f"evil:{evil_id}"]
    from haic_core.haic_train.export import clip_file_name

    name = clip_file_name(final["item_id"].iloc[0])
    assert "/" not in name and name.endswith(".mp4")
    assert sorted(p.name for p in (home / "media" / "clips").iterdir()) == [name.removesuffix(".mp4") + ".json",
                                                                            name]
    assert not (tmp_path / "x").exists()
