"""YAML written by people (settings.yaml, a landing source.yaml, the eval model registry): read
with the file's name on every syntax error, in one line with its line and column."""

from __future__ import annotations

from typing import Any

import yaml


def load_yaml(text: str | bytes, name: str) -> Any:
    """The document in `text` (safe_load); ValueError "<name>: not valid YAML (line L, column C):
    <problem>" when it is not YAML. `name` says which file it is (a path, or landing/<source>/...)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ValueError(f"{name}: not valid YAML{line}: {problem}") from None
