"""The landing zone: where new metadata shards arrive, one folder (or S3 prefix) per source.

    landing/<source>/<shard file>      e.g. landing/webvid/results_2M_val.csv
    landing/<source>/source.yaml       optional: kind (webvid | omega | generic), columns, media_root
                                       (media_root must lie inside the deployment's allowed roots)

A shard's partition key is '<source>__<file name>'. Sources whose folder has no source.yaml
take their kind from the name: webvid* -> webvid, omega* -> omega.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from haic_core.accumulation.metadata_sources import ColumnMapping, SourceSpec
from haic_resources.storage.object_store import ObjectStore

SHARD_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".csv.gz", ".jsonl.gz")
_SOURCE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$")
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SEPARATOR = "__"


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
    shards, skipped = [], {}
    for key in landing.list(""):
        problem = shard_problem(key)
        if problem is None:
            source, name = key.split("/")
            shards.append(Shard(source, name))
        elif not key.endswith("source.yaml"):
            skipped[key] = problem
    return shards, skipped


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
    try:
        loaded = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        raise ValueError(f"{name}: not valid YAML{line}: {getattr(exc, 'problem', None) or exc}") from None
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


def fetch_shard(landing: ObjectStore, shard: Shard, cache_dir: Path) -> Path:
    """A local path of the shard file (itself when local; an S3 shard is downloaded first)."""
    local = landing.local_path(shard.key)
    if local is not None:
        if not local.is_file():
            raise FileNotFoundError(f"shard {shard.key} is no longer in the landing zone")
        return local
    target = cache_dir / "landing" / shard.key
    if not landing.get_file(shard.key, target):
        raise FileNotFoundError(f"shard {shard.key} is no longer in the landing zone")
    return target
