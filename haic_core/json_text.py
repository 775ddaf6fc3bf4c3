"""Reading the JSON inside a model's answer: the one reader of the project, json-repair's.

Models wrap JSON in Markdown code fences (```json ... ```, ``` ... ```, sometimes one fence
inside another), put prose around it and break its syntax (single quotes, trailing commas,
comments, a truncated end). json-repair reads all of these (it skips fences and prose, and mends
the syntax), so we keep no fence regex of our own: the LLM client's JSON answers, the caption
judge's score and the evaluation judge's answer are read here. QA answers go through the same
library in `haic_core.haicbench.qa_parsing`, which adds what only QA answers need (several lists
in one answer, apostrophes inside single-quoted strings).
"""

from __future__ import annotations

import json
from typing import Any

import json_repair


def json_value(text: str) -> Any:
    """The JSON value in `text`: bare, fenced or after prose, its syntax mended where broken.

    Raises ValueError when `text` holds no JSON value at all (plain prose such as "B" or "The
    caption does not mention it").
    """
    try:
        return json.loads(text)  # most answers (JSON mode) are plain JSON: no repair pass
    except ValueError:
        pass
    try:
        value = json_repair.loads(text)
    except (TypeError, RecursionError) as exc:  # a pathological answer (nesting thousands deep)
        raise ValueError(f"no readable JSON value in the text ({type(exc).__name__})") from None
    if value == "":  # json-repair's answer for text without JSON (a real "" was read above)
        raise ValueError("no JSON value in the text")
    return value


def json_text(text: str) -> str:
    """`json_value(text)` as canonical JSON text (what a model's answer meant); raises ValueError."""
    return json.dumps(json_value(text), ensure_ascii=False)
