"""Stage settings: the paper's values as defaults, overridable per deployment in one YAML file.

    # $HAIC_HOME/settings.yaml  (or the file named by HAIC_SETTINGS)
    action_filtered:
      motion_l1_min: 0.12

The effective defaults feed each stage's `Config` class (so the launchpad shows them) and its
code version (so changing a threshold makes exactly that stage, and what depends on it, stale).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from haic_core.ledger import config_hash
from haic_resources.storage.home import env_setting, haic_home

# Bump a stage's number when its code changes what it produces.
CODE_VERSIONS: dict[str, str] = {
    "raw_metadata": "1",
    "metadata_filtered": "1",
    "videos": "1",
    "clips": "2",  # 2: detector sees FFmpeg point-sampled frames (closer to PySceneDetect's)
    "human_presence": "1",
    "pose_tracks": "1",
    "action_filtered": "1",
    "captions": "1",
    "caption_judgement": "1",
    "haic_train": "1",
    "bench_captions": "1",
    "qa_pairs": "1",
    "qa_verified": "1",
    "haicbench_split": "1",
    "dataset_statistics": "1",
}


def settings_path() -> Path:
    return Path(env_setting("HAIC_SETTINGS") or haic_home().root / "settings.yaml")


@lru_cache(maxsize=1)
def _settings() -> dict[str, dict[str, Any]]:
    path = settings_path()
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected a mapping of stage name -> settings mapping")
    unknown = sorted(set(data) - set(CODE_VERSIONS))
    if unknown:
        raise ValueError(f"{path}: unknown stage(s) {unknown}; known: {sorted(CODE_VERSIONS)}")
    return data


def setting(stage: str, name: str, default: Any) -> Any:
    """The deployment's value of one stage setting, or the paper's default."""
    return _settings().get(stage, {}).get(name, default)


def stage_code_version(stage: str, config_class: type | None = None) -> str:
    """'<code version>-<hash of the effective default settings>' for Dagster's staleness."""
    version = CODE_VERSIONS[stage]
    if config_class is None:
        return version
    return f"{version}-{config_hash(config_class().model_dump())}"
