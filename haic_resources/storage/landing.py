"""The landing zone: where new metadata shards arrive, one folder (or S3 prefix) per source.

    landing/<source>/<shard file>      e.g. landing/webvid/results_2M_val.csv
    landing/<source>/source.yaml       optional: kind (webvid | omega | generic), columns, media_root
                                       (media_root must lie inside the deployment's allowed roots)

A shard's partition key is '<source>__<file name>'. Sources whose folder has no source.yaml
take their kind from the name: webvid* -> webvid, omega* -> omega.

A shard is read only once it is complete: a marker file beside it (`<shard file>.complete`, as
`haic add-shard` writes), or, without one, no change for `platform.landing_complete_after_s`
seconds. Each complete shard has a *version*: the sha256 of its bytes (local folders) or its
ETag and size (S3). raw_metadata records the version it read; a file replaced or appended after
that has another version, which makes its partition stale.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from haic_core.accumulation.metadata_sources import ColumnMapping, SourceSpec
from haic_resources.storage.files import atomic_write_bytes, sha256_file
from haic_resources.storage.object_store import ObjectStat, ObjectStore
from haic_resources.storage.yaml_text import load_yaml

SHARD_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".csv.gz", ".jsonl.gz")
_SOURCE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$")
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SEPARATOR = "__"
MARKER_SUFFIX = ".complete"  # landing/<source>/<shard file>.complete: the producer says the shard is whole


@dataclass(frozen=True)
class Shard:
    source: str
    file_name: str

    @property
    def partition_key(self) -> str:
        return f"{self.source}{SEPARATOR}{self.file_name}"

    @property
    def key(self) -> str:
        return f"{self.source}/{self.file_name}"


def shard_of_partition(partition_key: str) -> Shard:
    """The shard a partition key names; ValueError when the key is not a valid shard's.

    The one validator of partition keys (the stages, `haic run`, `haic add-shard`): every
    table, ledger and manifest path is built from the key, so a key such as
    'x__a/../../metadata_filtered/b.csv' must be refused before any path is made of it.
    """
    source, sep, file_name = str(partition_key).partition(SEPARATOR)
    if not sep or not file_name:
        raise ValueError(f"partition key {partition_key!r} is not '<source>{SEPARATOR}<shard file>'")
    problem = shard_problem(f"{source}/{file_name}")
    if problem is not None:
        raise ValueError(f"partition key {partition_key!r}: {problem}")
    return Shard(source, file_name)


def shard_problem(key: str) -> str | None:
    """Why a landing key cannot be a shard (None when it can)."""
    parts = key.split("/")
    if len(parts) != 2:
        return "shards live directly in landing/<source>/"
    source, name = parts
    if name == "source.yaml" or name.startswith("."):
        return "not a shard file"
    if not name.lower().endswith(SHARD_SUFFIXES):
        return f"not a metadata file ({', '.join(SHARD_SUFFIXES)})"
    if not _SOURCE_NAME.match(source) or SEPARATOR in source:
        return f"source folder {source!r}: use lower-case letters, digits, '-' and single '_'"
    if not _SHARD_NAME.match(name):
        return f"shard file {name!r}: use letters, digits, '.', '_' and '-'"
    return None


def list_shards(landing: ObjectStore) -> tuple[list[Shard], dict[str, str]]:
    """All shard files in the landing zone, and the keys that were skipped with the reason."""
    landed, skipped = list_landed(landing)
    return [item.shard for item in landed], skipped


@dataclass(frozen=True)
class LandedShard:
    """A shard file as the landing zone's listing shows it."""

    shard: Shard
    stat: ObjectStat
    marked: bool  # its completion marker is there


def list_landed(landing: ObjectStore) -> tuple[list[LandedShard], dict[str, str]]:
    """Every shard file with its size, time and completion marker (one listing), and the keys that
    were skipped with the reason (source.yaml files and markers are neither)."""
    stats = landing.stat("")
    landed, skipped = [], {}
    for key, stat in sorted(stats.items()):
        if key.endswith("source.yaml") or key.endswith(MARKER_SUFFIX):
            continue
        problem = shard_problem(key)
        if problem is None:
            source, name = key.split("/")
            landed.append(LandedShard(Shard(source, name), stat, key + MARKER_SUFFIX in stats))
        else:
            skipped[key] = problem
    return landed, skipped


def waiting_reason(landed: LandedShard, now_s: float, complete_after_s: float, require_marker: bool) -> str | None:
    """Why a landed shard is not read yet (None: it is complete). A producer that writes a shard in
    place, or appends to it, is given `complete_after_s` seconds of quiet; one that writes the
    marker is read at once."""
    if landed.marked:
        return None
    if require_marker:
        return f"waiting for its marker landing/{landed.shard.key}{MARKER_SUFFIX}"
    quiet = now_s - landed.stat.modified_s
    if quiet < complete_after_s:
        return f"written {max(quiet, 0.0):.0f} s ago; read once unchanged for {complete_after_s:g} s (or when " \
               f"landing/{landed.shard.key}{MARKER_SUFFIX} appears)"
    return None


class LandingVersions:
    """The versions of landing files: ETag and size for objects that have an ETag (S3), else the
    sha256 of the bytes, hashed again only when the file's size or time changed (kept in `cache_file`)."""

    def __init__(self, landing: ObjectStore, cache_file: Path | None = None):
        self.landing = landing
        self.cache_file = cache_file
        self._known: dict[str, list] = {}
        if cache_file is not None and cache_file.is_file():
            try:
                self._known = json.loads(cache_file.read_text())
            except ValueError:  # a damaged cache is only a cache
                self._known = {}
        self._changed = False

    def version(self, key: str, stat: ObjectStat) -> str:
        if stat.etag:
            return f"etag:{stat.etag.strip(chr(34))}:{stat.size}"
        known = self._known.get(key)
        if known and known[0] == stat.size and known[1] == stat.modified_s:
            return known[2]
        path = self.landing.local_path(key)
        version = f"sha256:{sha256_file(path)}"
        self._known[key] = [stat.size, stat.modified_s, version]
        self._changed = True
        return version

    def save(self) -> None:
        if self.cache_file is not None and self._changed:
            atomic_write_bytes(self.cache_file, json.dumps(self._known, sort_keys=True).encode("utf-8"))
            self._changed = False


def closest_keys(key: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known partition keys most like a mistyped `key` ("did you mean"): close matches by
    difflib's ratio, else those of the same source."""
    known = sorted(set(known))
    close = difflib.get_close_matches(key, known, n=n, cutoff=0.6)
    return close or [k for k in known if k.split(SEPARATOR, 1)[0] == key.split(SEPARATOR, 1)[0]][:n]


class SourceFile(BaseModel):
    """The schema of landing/<source>/source.yaml (an unknown key or a wrong type is refused)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["webvid", "omega", "generic"] | None = None
    columns: ColumnMapping | None = None
    media_root: str | None = None
    uri_template: str | None = None  # where rows without a uri are fetched from, e.g. a mirror of YouTube pages


def source_spec(landing: ObjectStore, source: str, allowed_roots: tuple[str, ...]) -> SourceSpec:
    """How to read `source`, from its source.yaml (if any). ValueError naming the file and the key
    for a malformed file, and for a media_root outside the deployment's allowed roots: the landing
    zone is written by data providers, so it may choose a root among those, never add one."""
    name = f"landing/{source}/source.yaml"
    raw = landing.get_bytes(f"{source}/source.yaml")
    loaded = load_yaml(raw, name) if raw else None
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError(f"{name}: expected a mapping of kind, columns, media_root; got {type(loaded).__name__}")
    try:
        config = SourceFile.model_validate(loaded or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{name}: {problems}") from None
    kind = config.kind or ("webvid" if source.startswith("webvid") else
                           "omega" if source.startswith("omega") else "generic")
    mapping = config.columns
    if config.uri_template is not None:
        mapping = (mapping or SourceSpec(name=source, kind=kind).column_mapping()).model_copy(
            update={"uri_template": config.uri_template})
    roots = tuple(str(Path(r).resolve()) for r in allowed_roots)
    media_root = config.media_root
    if media_root is not None:
        resolved = Path(media_root).resolve()
        if not Path(media_root).is_absolute() or not any(resolved.is_relative_to(r) for r in roots):
            raise ValueError(f"{name}: media_root {media_root!r} is outside the allowed media roots "
                             "(HAIC_ALLOWED_MEDIA_ROOTS)")
        media_root = str(resolved)
    return SourceSpec(name=source, kind=kind, mapping=mapping, media_root=media_root, allowed_roots=roots)


def fetch_shard(landing: ObjectStore, shard: Shard, cache_dir: Path) -> tuple[Path, str]:
    """A local path of the shard file (itself when local; an S3 shard is downloaded first) and the
    version it had when it was read. The version is taken before the bytes are read: a file
    replaced meanwhile is newer than its recorded version, so it is found stale and read again."""
    stat = landing.stat(shard.key).get(shard.key)
    if stat is None:
        raise FileNotFoundError(f"shard {shard.key} is no longer in the landing zone")
    version = LandingVersions(landing).version(shard.key, stat)
    local = landing.local_path(shard.key)
    if local is not None:
        return local, version
    target = cache_dir / "landing" / shard.key
    if not landing.get_file(shard.key, target):
        raise FileNotFoundError(f"shard {shard.key} is no longer in the landing zone")
    return target, version
