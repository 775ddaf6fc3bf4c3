"""The `eval_models` partitions and the registry file that says what each key means.

A key is added with `haic evaluate` (which also registers the entry), or from the UI's "add
partition" dialog: either after `haic evaluate --register-only` wrote its entry, or as a key that
spells the entry out, `<model>[__gemini]__<standard|caption>__f<frames>[__verified-<batch>]`
(e.g. `gpt-4o__standard__f50`; the base URL then comes from OPENAI_BASE_URL). The file is
`$HAIC_HOME/evaluation/models.yaml`, `{key: {provider, model, base_url, frames, protocol, qa_set}}`.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import DynamicPartitionsDefinition

from haic_core.evaluation.models import EvalModel, registry_entry, registry_with
from haic_resources.storage.files import atomic_write_bytes
from haic_resources.storage.yaml_text import load_yaml

eval_models = DynamicPartitionsDefinition(name="eval_models")
REGISTRY_FILE = Path("evaluation") / "models.yaml"


def registry_path(home: str | Path) -> Path:
    return Path(home) / REGISTRY_FILE


def read_registry(home: str | Path) -> dict[str, dict]:
    path = registry_path(home)
    if not path.exists():
        return {}
    loaded = load_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of eval model keys to entries")
    return loaded


def register(home: str | Path, entry: EvalModel, instance=None) -> str:
    """Add `entry` to the registry (and, given a Dagster instance, its partition); its key."""
    path = registry_path(home)
    updated = registry_with(read_registry(home), entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, yaml.safe_dump(updated, sort_keys=True).encode("utf-8"))
    if instance is not None and not instance.has_dynamic_partition(eval_models.name, entry.key):
        instance.add_dynamic_partitions(eval_models.name, [entry.key])
    return entry.key


def unregister(home: str | Path, key: str, instance=None) -> None:
    """Take `key` out of the registry (and, given a Dagster instance, its partition): undoes the
    `register` of a command that then failed, so no partition is left that nothing answers."""
    registry = read_registry(home)
    if key in registry:
        del registry[key]
        atomic_write_bytes(registry_path(home), yaml.safe_dump(registry, sort_keys=True).encode("utf-8"))
    if instance is not None and instance.has_dynamic_partition(eval_models.name, key):
        instance.delete_dynamic_partition(eval_models.name, key)


def lookup(home: str | Path, key: str) -> EvalModel:
    return registry_entry(read_registry(home), key)
