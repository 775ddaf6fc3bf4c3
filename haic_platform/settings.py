"""Deployment settings: one YAML file, read when the definitions are built (so when a run
starts: each run's process builds them), never at import.

    # $HAIC_HOME/settings.yaml  (or the file named by HAIC_SETTINGS)
    action_filtered:          # a stage: any field of its Config class
      motion_l1_min: 0.12
    platform:                 # settings of the platform itself
      partitions_per_run: 4
      recuration_cron: "0 3 * * 1"
      executor: dask          # or multiprocess (default), k8s: see platform/executors.py

A stage's settings become the defaults of its `Config` (so the launchpad shows them) and part of
its code version (so changing a threshold makes exactly that stage, and what depends on it,
stale). An unknown stage or key, a value out of its range (a count below 0, a fraction above 1, a
minimum above its maximum) and a YAML syntax error are errors of one line that name the file and
the key (or the line and column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from haic_platform.deployment import K8sSettings
from haic_resources.storage.home import env_setting, haic_home
from haic_resources.storage.yaml_text import load_yaml

PLATFORM = "platform"


def not_below(low: str, high: str):
    """A validator of a Config's pair of bounds: `high` may not be below `low` (min_people <=
    max_people). It names `high`, so the error names the file and the key that is out of order;
    `high` is declared after `low` with validate_default=True, so a changed `low` is checked
    against the default `high` too."""

    def check(cls, value, info):
        other = info.data.get(low)
        if value is not None and other is not None and value < other:
            raise ValueError(f"{low} {other} is above {high} {value}")
        return value

    return field_validator(high)(check)


class PlatformSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partitions_per_run: int = Field(
        default=4, ge=1, description="a backfill launches runs of up to this many source shards: fewer pods and "
                                     "model loads than one run per shard, and a failed run costs at most this many")
    recuration_cron: str = Field(default="0 3 * * 1", description="the scheduled re-curation pass of stale partitions (Mondays 03:00)")
    max_error_rate: float = Field(default=0.10, ge=0.0, le=1.0,
                                  description="a stage's check warns when more of a partition's items are in error")
    executor: Literal["multiprocess", "dask", "k8s"] = Field(
        default="multiprocess", description="where a run's steps execute: child processes of the run (multiprocess), "
                                            "the workers of a Dask scheduler (dask), a pod each (k8s); HAIC_EXECUTOR "
                                            "overrides it (platform/executors.py)")
    dask_scheduler: str = Field(default="tcp://127.0.0.1:8786",
                                description="address of the Dask scheduler (HAIC_DASK_SCHEDULER overrides it)")
    k8s: K8sSettings = Field(default_factory=K8sSettings, description="the k8s executor and its pods")
    yield_band_pct: tuple[float, float] = Field(
        default=(0.31, 1.3), description="action_filtered's check warns when the accumulation keeps a share of the "
                                         "shard's raw_metadata rows outside this band (the paper: 0.31-1.3 %)")
    ledger_history_runs: int = Field(
        default=2, ge=0, description="earlier runs whose ledger rows are kept per stage and partition beside the "
                                     "current ones, for `haic diff` (0: none); older ones are dropped")
    min_caption_format_pass_rate: float = Field(
        default=0.5, ge=0.0, le=1.0, description="caption_judgement's check warns when fewer captions pass")
    landing_complete_after_s: float = Field(
        default=60.0, ge=0.0, description="a landed shard without its marker (<file>.complete) is read once it has "
                                          "not changed for this many seconds (a producer may still be writing it)")
    landing_require_marker: bool = Field(
        default=False, description="read a landed shard only once its marker <file>.complete is there")

    @field_validator("yield_band_pct")
    @classmethod
    def _a_band_of_percentages(cls, band: tuple[float, float]) -> tuple[float, float]:
        low, high = band
        if not 0.0 <= low <= high <= 100.0:
            raise ValueError(f"expected [low, high] with 0 <= low <= high <= 100 (percent), got [{low}, {high}]")
        return band


@dataclass(frozen=True)
class Settings:
    stages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    path: Path | None = None

    def stage(self, name: str) -> Mapping[str, Any]:
        return self.stages.get(name, {})


def settings_path() -> Path:
    return Path(env_setting("HAIC_SETTINGS") or haic_home().root / "settings.yaml")


def load_settings(known_fields: Mapping[str, set[str]], path: Path | None = None) -> Settings:
    """Read and check the settings file; `known_fields` is stage -> its Config's field names."""
    path = path or settings_path()
    if not path.is_file():
        return Settings(path=None)
    data = load_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected a mapping of section name (a stage, or '{PLATFORM}') -> settings mapping")
    platform_fields = set(PlatformSettings.model_fields)
    stages: dict[str, dict[str, Any]] = {}
    for section, values in data.items():
        if section == PLATFORM:
            continue
        if section not in known_fields:
            raise ValueError(f"{path}: unknown section {section!r}; sections are '{PLATFORM}' and the stages "
                             f"{sorted(known_fields)}")
        for key in values:
            if key in known_fields[section]:
                continue
            hint = f" ('{key}' is a platform setting: put it under '{PLATFORM}:')" if key in platform_fields else ""
            raise ValueError(f"{path}: {section}.{key} is not a setting of stage {section}{hint}; its settings are "
                             f"{sorted(known_fields[section])}")
        stages[section] = dict(values)
    try:
        platform = PlatformSettings(**data.get(PLATFORM, {}))
    except ValidationError as exc:
        problems = "; ".join(f"{PLATFORM}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from None
    return Settings(stages=stages, platform=platform, path=path)
