"""Finding the JSON inside a model's answer: the one fence reader of the project.

Models wrap JSON in Markdown code fences (```json ... ```, ``` ... ```, sometimes one fence
inside another) and in prose. QA parsing, the caption judge and the LLM client all read
answers through these two functions.
"""

from __future__ import annotations

import re

# An opening fence with an optional language tag, the block, the closing fence (non-greedy:
# several blocks in one answer are found one by one).
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\r?\n?(.*?)```", re.S)


def fenced_blocks(text: str) -> list[str]:
    """The non-empty contents of every fenced code block in `text`, in order."""
    return [block for block in _FENCE.findall(text) if block.strip()]


def unfenced(text: str) -> str:
    """`text` without a fence around the whole of it (a fence inside a fence too); else `text`
    stripped."""
    stripped = text.strip()
    while stripped.startswith("```") and stripped.endswith("```") and len(stripped) > 6:
        blocks = fenced_blocks(stripped)
        if len(blocks) != 1:
            break
        stripped = blocks[0].strip()
    return stripped
