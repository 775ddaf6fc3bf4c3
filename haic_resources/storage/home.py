"""HAIC_HOME: the one directory that holds everything the platform writes.

    $HAIC_HOME/
      dagster/        Dagster instance (runs, events, schedules; its dagster.yaml is the repo's profile)
      landing/        where new metadata shards arrive: landing/<source>/<shard file>
      tables/         Parquet, one file per partition: tables/<table>/<partition>.parquet
      media/          fetched videos and cut clips
      cache/          model files, LLM responses
      exports/        HAICTrain / HAICBench releases
      annotations/    HAICBench annotation batches
      warehouse.duckdb  DuckDB views over tables/ and the aggregate tables

Tables and media can live in S3 instead (HAIC_TABLES_URI / HAIC_MEDIA_URI = s3://bucket/prefix).
This module is the only place that reads these environment variables.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HAIC_HOME = Path.home() / ".haic"
PROFILES = {"local": REPO_ROOT / "dagster.yaml", "production": REPO_ROOT / "deploy" / "dagster.production.yaml"}


def _under_root(relative: str) -> Any:
    """A HomeLayout field: `root / relative`, computed once when the layout is made."""
    return field(init=False, metadata={"relative": relative})


@dataclass(frozen=True)
class HomeLayout:
    """The places under HAIC_HOME (see the module docstring), each a path made once from `root`."""

    root: Path
    dagster: Path = _under_root("dagster")
    landing: Path = _under_root("landing")
    tables: Path = _under_root("tables")
    media: Path = _under_root("media")
    cache: Path = _under_root("cache")
    exports: Path = _under_root("exports")
    annotations: Path = _under_root("annotations")
    warehouse: Path = _under_root("warehouse.duckdb")

    def __post_init__(self) -> None:
        for place in fields(self):
            if "relative" in place.metadata:
                # The dataclass is frozen; this is the one moment its places are set.
                object.__setattr__(self, place.name, self.root / place.metadata["relative"])


def haic_home() -> HomeLayout:
    return HomeLayout(Path(os.environ.get("HAIC_HOME", DEFAULT_HAIC_HOME)).expanduser().resolve())


def env_setting(name: str, default: str | None = None) -> str | None:
    """Deployment settings (not secrets) that choose where things live; secrets go through EnvVar."""
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_number(name: str, default: str | None, kind: type[int] | type[float]) -> int | float | None:
    """A numeric deployment setting; a value that is no number is an error naming the variable."""
    value = env_setting(name, default)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not {'an integer' if kind is int else 'a number'}") from None


def profile() -> str:
    name = env_setting("HAIC_PROFILE", "local")
    if name not in PROFILES:
        raise ValueError(f"HAIC_PROFILE={name!r}: choose one of {sorted(PROFILES)}")
    return name


def prepare_dagster_home(layout: HomeLayout | None = None) -> Path:
    """Create $HAIC_HOME/dagster with the chosen profile's dagster.yaml; return it (DAGSTER_HOME)."""
    layout = layout or haic_home()
    layout.dagster.mkdir(parents=True, exist_ok=True)
    source = PROFILES[profile()]
    target = layout.dagster / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    return layout.dagster
