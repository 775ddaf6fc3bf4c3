"""Ingestion: every adapter maps onto one schema; bad rows are dropped with a reason."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from haic_core.accumulation.metadata_sources import (
    NORMALIZED_COLUMNS, ColumnMapping, SourceSpec, normalize_metadata, parse_duration_s, read_shard_file,
)


@pytest.mark.parametrize("text, seconds", [
    ("PT00H00M21S", 21.0), ("PT00H01M02S", 62.0), ("PT21S", 21.0), ("PT1M2.5S", 62.5),
    ("PT1H", 3600.0), ("P1DT1S", 86401.0), (12, 12.0),
    ("10", 10.0), ("6.67", 6.67), (" 21 ", 21.0), ("00:00:10", 10.0), ("01:02:03.5", 3723.5), ("1:02", 62.0),
])
def test_durations_in_seconds_clock_time_and_iso8601_parse(text, seconds):
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["about ten seconds", "PT", "P", "-21", "PT-3S", "", float("nan"), "1:75", "10 s"])
def test_unparseable_durations_are_refused(text):
    with pytest.raises(ValueError, match="unparseable duration"):
        parse_duration_s(text)


def webvid(tmp_path, rows):
    frame = pd.DataFrame(rows, columns=["videoid", "contentUrl", "duration", "page_dir", "name"])
    spec = SourceSpec(name="webvid", kind="webvid", media_root=str(tmp_path), allowed_roots=(str(tmp_path),))
    return normalize_metadata(frame.astype(object).where(frame.notna(), None), spec, "shard.csv")


def test_webvid_rows_are_normalized(tmp_path):
    table, decisions = webvid(tmp_path, [
        [31353427, "https://ak.picdn.net/shutterstock/videos/31353427/preview/stock-footage.mp4",
         "PT00H00M21S", "006001_006050", "Woman waves at the camera"],
    ])
    assert [(d.item_id, d.verdict, d.reason) for d in decisions] == [("webvid:31353427", "kept", "parsed")]
    row = table.iloc[0]
    assert list(table.columns) == list(NORMALIZED_COLUMNS)
    assert row.video_id == "webvid:31353427" and row.native_id == "31353427" and row.source == "webvid"
    assert row.duration_s == 21.0 and row.shard == "shard.csv"
    assert pd.isna(row.width) and pd.isna(row.height)
    assert json.loads(row.extra) == {"page_dir": "006001_006050"}


def test_bad_webvid_rows_are_dropped_with_reasons_and_good_rows_pass(tmp_path):
    (tmp_path / "ok.mp4").write_bytes(b"x")
    table, decisions = webvid(tmp_path, [
        [1, "ok.mp4", "PT00H00M10S", "p", "Man runs"],
        [None, "ok.mp4", "PT00H00M10S", "p", "no id here"],
        [3, "ok.mp4", "ten seconds", "p", "Man jumps"],
        [1, "ok.mp4", "PT00H00M10S", "p", "Man runs again"],
        [5, "../../etc/passwd", "PT00H00M10S", "p", "Man types"],
        [6, "file:///etc/passwd", "PT00H00M10S", "p", "Man types"],
        [7, None, "PT00H00M10S", "p", "Man walks"],
    ])
    assert table["video_id"].tolist() == ["webvid:1"]
    dropped_reasons = {d.item_id: d.reason for d in decisions if d.verdict == "dropped"}
    assert dropped_reasons == {
        "webvid:shard.csv#row2": "missing id",
        "webvid:3": "unparseable duration 'ten seconds'",
        "webvid:shard.csv#row4": "duplicate id webvid:1 (row 4; the first row with this id is kept)",
        "webvid:5": "local uri '../../etc/passwd' resolves outside the allowed roots",
        "webvid:6": "local uri 'file:///etc/passwd' resolves outside the allowed roots",
        "webvid:7": "missing uri",
    }
    assert [(d.item_id, d.reason) for d in decisions if d.verdict == "kept"] == [("webvid:1", "parsed")]


def test_omega_parquet_windows_give_durations_and_youtube_uris(tmp_path):
    path = tmp_path / "omega_000.parquet"
    pd.DataFrame({
        "youtube_id": ["dQw4w9WgXcQ", "abc"], "description": ["A man sings", "A dog runs"],
        "start_time": [12.0, 5.0], "end_time": [27.5, 5.0],
    }).to_parquet(path)
    spec = SourceSpec(name="omega", kind="omega")
    table, decisions = normalize_metadata(read_shard_file(path), spec, path.name)
    assert table["video_id"].tolist() == ["omega:dQw4w9WgXcQ"]
    assert table["uri"].iloc[0] == "ytdlp+https://www.youtube.com/watch?v=dQw4w9WgXcQ#t=12,27.5"  # read by yt-dlp
    assert table["duration_s"].iloc[0] == 15.5 and table["start_s"].iloc[0] == 12.0
    assert [(d.verdict, d.reason) for d in decisions] == [("dropped", "end 5.0 s is not after start 5.0 s"),
                                                          ("kept", "parsed")]


def test_generic_jsonl_uses_the_configured_column_mapping(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"key": "a1", "caption": "Kids play football", "url": "s3://bucket/a1.mp4", "w": 1920, "h": 1080, "secs": 12}\n'
        '{"key": "a2", "caption": "A cat sleeps", "url": "https://example.org/a2.mp4", "w": 640, "h": 360, "secs": 7.5}\n')
    spec = SourceSpec(name="mine", mapping=ColumnMapping(id="key", description="caption", uri="url", width="w",
                                                         height="h", duration="secs"))
    table, decisions = normalize_metadata(read_shard_file(path), spec, path.name)
    assert {d.verdict for d in decisions} == {"kept"}
    assert table[["video_id", "width", "height", "duration_s"]].values.tolist() == [
        ["mine:a1", 1920, 1080, 12.0], ["mine:a2", 640, 360, 7.5]]


def test_a_shard_without_the_adapter_columns_fails_clearly(tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['videoid', 'name'\]"):
        normalize_metadata(read_shard_file(path), SourceSpec(name="webvid", kind="webvid"), path.name)


def test_empty_and_wrong_format_files_fail_clearly(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        read_shard_file(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("videoid,contentUrl,duration,page_dir,name\n")
    with pytest.raises(ValueError, match="has no rows"):
        read_shard_file(header_only)
    not_parquet = tmp_path / "fake.parquet"
    not_parquet.write_text("videoid,name\n1,x\n")
    with pytest.raises(ValueError, match="is not valid parquet"):
        read_shard_file(not_parquet)
    xlsx = tmp_path / "sheet.xlsx"
    xlsx.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="unsupported format .xlsx"):
        read_shard_file(xlsx)


def test_an_id_too_long_for_a_file_name_is_dropped(tmp_path):
    (tmp_path / "ok.mp4").write_bytes(b"x")
    table, decisions = webvid(tmp_path, [["a" * 161, "ok.mp4", "PT10S", "p", "Man runs"],
                                         ["b" * 160, "ok.mp4", "PT10S", "p", "Man runs"]])
    assert table["video_id"].tolist() == ["webvid:" + "b" * 160]
    assert [(d.item_id, d.verdict, d.reason) for d in decisions] == [
        ("webvid:shard.csv#row1", "dropped", "id longer than 160 characters (161)"),
        ("webvid:" + "b" * 160, "kept", "parsed")]


def test_a_text_shard_with_invalid_utf8_keeps_its_rows_and_lists_them(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"videoid,contentUrl,duration,page_dir,name\n1,a.mp4,PT1S,p,Caf\xe9 man runs\n"
                     b"2,b.mp4,PT1S,p,Man jumps\n")
    table = read_shard_file(path)
    assert table["name"].tolist() == ["Caf\ufffd man runs", "Man jumps"]
    assert table.attrs["replaced_utf8_rows"] == [1]
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ValueError, match="is not valid csv: binary data, not UTF-8 text"):
        read_shard_file(binary)
