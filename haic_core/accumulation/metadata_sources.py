"""Source adapters: one raw metadata table in, one normalized table out.

A *source* (WebVid, Omega, a user's own) delivers *shards* (metadata files). Each adapter maps
the source's columns onto one schema; rows that cannot be used are returned as `Decision`s with
the reason, and never stop the rest of the shard. Pure: tables in, tables and decisions out.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Literal, Mapping
from urllib.parse import urlparse

import pandas as pd
from pydantic import BaseModel, ConfigDict

from haic_core.accumulation.page_uris import is_ytdlp_uri, ytdlp_uri
from haic_core.decisions import Decision, dropped, kept

# Ids become file names (clips, exports): longer ones could not be stored (255 bytes per name).
MAX_NATIVE_ID_CHARS = 160
NORMALIZED_COLUMNS: tuple[str, ...] = (
    "video_id", "native_id", "source", "shard", "description", "uri",
    "width", "height", "duration_s", "fps", "start_s", "end_s", "extra",
)

# WebVid durations look like PT00H00M21S; allow fractions and omitted parts (PT21S, PT1M2.5S).
_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
# Plain seconds ("10", "6.67") and clock times (HH:MM:SS(.ff), MM:SS(.ff)).
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")
_CLOCK = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>[0-5]?\d):(?P<s>[0-5]?\d(?:\.\d+)?)$")


def parse_duration_s(text: Any) -> float:
    """A duration in seconds from plain seconds (10, "6.67"), a clock time ("00:01:02.5",
    "1:02") or ISO-8601 ("PT00H00M21S"). Raises ValueError("unparseable duration ...") on
    anything else, negative or NaN values included."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if math.isnan(text) or text < 0:
            raise ValueError(f"unparseable duration {text!r}")
        return float(text)
    s = str(text).strip()
    if _SECONDS.match(s):
        return float(s)
    clock = _CLOCK.match(s)
    if clock:
        return float(clock["h"] or 0) * 3600 + float(clock["m"]) * 60 + float(clock["s"])
    match = _ISO_DURATION.match(s)
    if not match or s in ("P", "PT") or not any(match.groupdict().values()):
        raise ValueError(f"unparseable duration {text!r}")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


class ColumnMapping(BaseModel):
    """Which raw column feeds each normalized field (a generic source's `columns:` in source.yaml;
    an unknown key is refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    description: str
    uri: str | None = None
    duration: str | None = None
    width: str | None = None
    height: str | None = None
    fps: str | None = None
    start: str | None = None
    end: str | None = None
    uri_template: str | None = None  # e.g. "https://youtu.be/{id}" when the source gives no uri
    fetch: Literal["direct", "ytdlp"] = "direct"  # ytdlp: the uri is a web page yt-dlp reads (page_uris)


WEBVID = ColumnMapping(id="videoid", description="name", uri="contentUrl", duration="duration",
                       width="width", height="height")
# Omega-multimodal style: a YouTube id with a start/end window per row.
OMEGA = ColumnMapping(id="youtube_id", description="description", uri="uri", start="start_time",
                      end="end_time", uri_template="https://www.youtube.com/watch?v={id}", fetch="ytdlp")


@dataclass(frozen=True)
class SourceSpec:
    """How to read one source: its name, adapter kind and column mapping."""

    name: str
    kind: str = "generic"  # webvid | omega | generic
    mapping: ColumnMapping | None = None
    media_root: str | None = None  # where relative local uris resolve
    allowed_roots: tuple[str, ...] = field(default_factory=tuple)

    def column_mapping(self) -> ColumnMapping:
        if self.mapping is not None:
            return self.mapping
        if self.kind == "webvid":
            return WEBVID
        if self.kind == "omega":
            return OMEGA
        raise ValueError(f"source {self.name!r} of kind 'generic' needs a column mapping")


def resolve_local_uri(uri: str, media_root: str | None, allowed_roots: tuple[str, ...]) -> str:
    """Absolute path of a local uri, or ValueError when it escapes every allowed root.

    Metadata rows come from outside; a row must not make us read `../../etc/passwd`.
    """
    parsed = urlparse(uri)
    raw = parsed.path if parsed.scheme == "file" else uri
    path = Path(raw)
    if not path.is_absolute():
        if not media_root:
            raise ValueError(f"relative uri {uri!r} but the source has no media root")
        path = Path(media_root) / path
    resolved = path.resolve()
    for root in allowed_roots:
        if resolved.is_relative_to(Path(root).resolve()):
            return str(resolved)
    raise ValueError(f"local uri {uri!r} resolves outside the allowed roots")


def _is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https", "s3") or is_ytdlp_uri(uri)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _number(value: Any) -> float | None:
    if _blank(value):
        return None
    number = float(value)
    if math.isnan(number) or number < 0:
        raise ValueError(f"not a non-negative number: {value!r}")
    return number


def normalize_metadata(raw: pd.DataFrame, spec: SourceSpec, shard: str) -> tuple[pd.DataFrame, list[Decision]]:
    """Map a raw shard table onto NORMALIZED_COLUMNS: one decision per row, bad rows dropped
    with the reason, good rows kept as "parsed" (saying so when their text had invalid UTF-8,
    which `read_shard_file` replaced and listed in `raw.attrs[REPLACED_UTF8_ROWS]`)."""
    mapping = spec.column_mapping()
    replaced_rows = set(raw.attrs.get(REPLACED_UTF8_ROWS, ()))
    missing = [c for c in (mapping.id, mapping.description) if c not in raw.columns]
    if missing:
        raise ValueError(
            f"shard {shard!r} of source {spec.name!r} ({spec.kind}) lacks column(s) {missing}; "
            f"it has {list(raw.columns)[:20]}"
        )
    mapped = {v for v in vars(mapping).values() if v}
    rows: list[dict[str, Any]] = []
    decisions: list[Decision] = []
    parsed: list[Decision] = []  # after the drops, as the ledger has always listed them
    seen: set[str] = set()
    for index, record in enumerate(raw.to_dict(orient="records")):
        row_ref = f"{spec.name}:{shard}#row{index + 1}"
        native = record.get(mapping.id)
        if _blank(native):
            decisions.append(dropped(row_ref, "missing id", item_kind="metadata_row",
                                     detail={"row": index + 1}))
            continue
        native_id = str(int(native)) if isinstance(native, float) and native.is_integer() else str(native).strip()
        if len(native_id) > MAX_NATIVE_ID_CHARS:
            decisions.append(dropped(row_ref, f"id longer than {MAX_NATIVE_ID_CHARS} characters "
                                              f"({len(native_id)})", item_kind="metadata_row",
                                     detail={"row": index + 1}))
            continue
        video_id = f"{spec.name}:{native_id}"
        if video_id in seen:
            # The repeated row is an item of its own (its row), under the video it repeats: the
            # video's one row in the ledger stays the kept one, so `haic why` tells one story.
            decisions.append(dropped(row_ref, f"duplicate id {video_id} (row {index + 1}; the first row with "
                                              "this id is kept)", item_kind="metadata_row", parent_id=video_id,
                                     code="duplicate_id", detail={"row": index + 1}))
            continue
        seen.add(video_id)
        try:
            row = _normalize_row(record, mapping, spec, native_id)
        except ValueError as exc:
            decisions.append(dropped(video_id, str(exc), item_kind="video", detail={"row": index + 1}))
            continue
        extra = {k: _jsonable(v) for k, v in record.items() if k not in mapped}
        row.update(video_id=video_id, native_id=native_id, source=spec.name, shard=shard,
                   extra=json.dumps(extra, sort_keys=True, default=str))
        rows.append(row)
        if index + 1 in replaced_rows:
            parsed.append(kept(video_id, "parsed; invalid UTF-8 bytes replaced by U+FFFD", item_kind="video",
                                  detail={"row": index + 1, "invalid_utf8": True}))
        else:
            parsed.append(kept(video_id, "parsed", item_kind="video"))
    table = pd.DataFrame(rows, columns=list(NORMALIZED_COLUMNS))
    for column in ("width", "height"):
        table[column] = table[column].astype("Int64")
    for column in ("duration_s", "fps", "start_s", "end_s"):
        table[column] = table[column].astype("Float64")
    return table, decisions + parsed


def _normalize_row(record: Mapping[str, Any], mapping: ColumnMapping, spec: SourceSpec,
                   native_id: str) -> dict[str, Any]:
    def get(column: str | None) -> Any:
        return record.get(column) if column else None

    description = get(mapping.description)
    description = "" if _blank(description) else str(description).strip()

    uri = get(mapping.uri)
    if _blank(uri):
        if not mapping.uri_template:
            raise ValueError("missing uri")
        uri = mapping.uri_template.format(id=native_id)
    uri = str(uri).strip()
    if not _is_remote(uri):
        uri = resolve_local_uri(uri, spec.media_root, spec.allowed_roots)

    duration = get(mapping.duration)
    start, end = _number(get(mapping.start)), _number(get(mapping.end))
    if mapping.fetch == "ytdlp" and urlparse(uri).scheme in ("http", "https"):
        uri = ytdlp_uri(uri, start, end)
    if not _blank(duration):
        duration_s: float | None = parse_duration_s(duration)
    elif start is not None and end is not None:
        if end <= start:
            raise ValueError(f"end {end} s is not after start {start} s")
        duration_s = end - start
    else:
        duration_s = None

    width, height = _number(get(mapping.width)), _number(get(mapping.height))
    return {
        "description": description,
        "uri": uri,
        "width": int(width) if width is not None else None,
        "height": int(height) if height is not None else None,
        "duration_s": duration_s,
        "fps": _number(get(mapping.fps)),
        "start_s": start,
        "end_s": end,
    }


def _jsonable(value: Any) -> Any:
    if _blank(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


# -- reading shard files --------------------------------------------------------------------

ShardReader = Callable[[io.StringIO], pd.DataFrame]
# raw.attrs key: the 1-based rows of a text shard whose invalid UTF-8 bytes were replaced.
REPLACED_UTF8_ROWS = "replaced_utf8_rows"
_TEXT_READERS: dict[str, ShardReader] = {
    ".csv": lambda t: pd.read_csv(t, dtype=str, keep_default_na=False, na_values=[""]),
    ".tsv": lambda t: pd.read_csv(t, sep="\t", dtype=str, keep_default_na=False, na_values=[""]),
    ".jsonl": lambda t: pd.read_json(t, lines=True, dtype=False),
    ".ndjson": lambda t: pd.read_json(t, lines=True, dtype=False),
}


def read_shard_file(path: Path) -> pd.DataFrame:
    """Read a CSV / TSV / JSONL / Parquet shard (text ones optionally .gz). Clear errors for empty
    or wrong-format files. Invalid UTF-8 in a text shard costs only the bytes: they are decoded
    as U+FFFD and the rows they were in are listed in `table.attrs[REPLACED_UTF8_ROWS]`."""
    suffix = PurePosixPath(path.name.removesuffix(".gz")).suffix.lower()
    if suffix not in (*_TEXT_READERS, ".parquet"):
        raise ValueError(f"shard {path.name}: unsupported format {suffix or '(none)'}; "
                         "use .csv, .tsv, .jsonl or .parquet")
    if path.stat().st_size == 0:
        raise ValueError(f"shard {path.name} is empty (0 bytes)")
    replaced = False
    try:
        if suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                data = gzip.decompress(data)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text, replaced = data.decode("utf-8", errors="replace"), True
                # Bad bytes in a value cost that value; in the header (or NULs anywhere) the file
                # is binary, not a table with a few bad bytes.
                header = text.split("\n", 1)[0] if suffix in (".csv", ".tsv") else ""
                if "\x00" in text or "\ufffd" in header:
                    raise ValueError("binary data, not UTF-8 text")
            table = _TEXT_READERS[suffix](io.StringIO(text))
    except Exception as exc:  # each parser raises its own kinds of error
        raise ValueError(f"shard {path.name} is not valid {suffix[1:]}: {exc}") from exc
    if table.empty:
        raise ValueError(f"shard {path.name} has no rows")
    table.attrs[REPLACED_UTF8_ROWS] = _rows_with_replacement_char(table) if replaced else []
    return table


def _rows_with_replacement_char(table: pd.DataFrame) -> list[int]:
    hit = table.apply(lambda column: column.map(lambda v: isinstance(v, str) and "\ufffd" in v)).any(axis=1)
    return [int(i) + 1 for i in range(len(table)) if hit.iloc[i]]
