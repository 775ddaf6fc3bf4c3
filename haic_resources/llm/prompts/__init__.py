"""Prompt templates as files, each with a version that goes into every cache key and record.

A template's version is its header's declared version plus the first 12 hex digits of the
sha256 of its body, so an edit that forgets to bump the declared version still changes the
version (and so misses the cache) instead of silently reusing answers to the old prompt.
Slots are `${name}` (string.Template), which leaves JSON braces in a prompt alone.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from string import Template

PROMPTS_DIR = Path(__file__).resolve().parent
_VERSION_PREFIX = "# version:"


@cache
def load_template(name: str) -> tuple[str, str]:
    """(template text without its header, version) for `name` (with or without `.txt`)."""
    path = PROMPTS_DIR / (name if name.endswith(".txt") else f"{name}.txt")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    declared = ""
    body_start = 0
    for index, line in enumerate(lines):
        if not line.startswith("# "):
            body_start = index
            break
        if line.startswith(_VERSION_PREFIX):
            declared = line[len(_VERSION_PREFIX) :].strip()
    else:
        body_start = len(lines)
    body = "".join(lines[body_start:])
    if not declared:
        raise ValueError(f"prompt template {path.name} has no '{_VERSION_PREFIX}' header line")
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]
    return body, f"{declared}+{digest}"


def render(template_text: str, **slots: str) -> str:
    """Fill `${slot}`s; a missing slot raises KeyError rather than sending a broken prompt."""
    return Template(template_text).substitute(**slots)


__all__ = ["PROMPTS_DIR", "load_template", "render"]
