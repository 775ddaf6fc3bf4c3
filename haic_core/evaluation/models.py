"""Which model is evaluated how: one `EvalModel` per `eval_models` partition.

The partition key names the entry; the entry itself (provider, model, base URL, frames, protocol,
question set) lives in the registry file (`$HAIC_HOME/evaluation/models.yaml`), because a base URL
does not belong in a key. Pure: the caller reads and writes the file.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

PROTOCOLS = ("standard", "caption")
PROVIDERS = ("openai", "gemini")
DEFAULT_FRAMES = 64  # the paper: 64 frames sampled uniformly
SPLIT_QA_SET = "split"
# How an OpenAI-compatible server sees a clip: N uniformly sampled frames as image parts (every
# server), or the clip itself as one `video_url` part (vLLM's and SGLang's standard video input).
VIDEO_INPUTS = ("frames", "video_url")
VERIFIED_PREFIX = "verified:"


@dataclass(frozen=True)
class EvalModel:
    """One evaluated configuration. `frames` is what an OpenAI-compatible server is sent per clip;
    Gemini takes the whole video, so for it `frames` is recorded but not used."""

    model: str
    protocol: str = "standard"
    provider: str = "openai"
    base_url: str | None = None
    frames: int = DEFAULT_FRAMES
    qa_set: str = SPLIT_QA_SET  # "split" or "verified:<annotation batch>"
    video_input: str = "frames"  # one of VIDEO_INPUTS (OpenAI-compatible servers)
    # USD per million input / output tokens of the model's own calls, for its cost (batch jobs at the
    # batch cut). None: not priced (a model on one's own server). Not part of the key or of what the
    # results mean, so registering the same model again may change them.
    input_price_per_million: float | None = None
    output_price_per_million: float | None = None

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ValueError("an evaluated model needs a model name")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r} is not one of {PROTOCOLS}")
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider {self.provider!r} is not one of {PROVIDERS}")
        if self.frames < 1:
            raise ValueError("frames must be >= 1")
        qa_set_batch(self.qa_set)  # validates
        if self.video_input not in VIDEO_INPUTS:
            raise ValueError(f"video input {self.video_input!r} is not one of {VIDEO_INPUTS}")
        if self.video_input == "video_url" and self.provider != "openai":
            raise ValueError("video_url is how OpenAI-compatible servers take a video; Gemini always takes the video")
        if any(p is not None and p < 0 for p in (self.input_price_per_million, self.output_price_per_million)):
            raise ValueError("prices per million tokens must be >= 0")

    @property
    def key(self) -> str:
        """The partition key: readable, stable, and free of the characters Dagster and file
        systems object to (`/`, `:`, spaces, commas)."""
        parts = [_slug(self.model), self.protocol, "video" if self.video_input == "video_url" else f"f{self.frames}"]
        if self.provider != "openai":
            parts.insert(1, self.provider)
        batch = qa_set_batch(self.qa_set)
        if batch is not None:
            parts.append(f"verified-{_slug(batch)}")
        return "__".join(parts)

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EvalModel:
        known = {f.name: record[f.name] for f in fields(cls) if f.name in record}
        if "frames" in known:
            known["frames"] = int(known["frames"])
        for price in PRICE_FIELDS:
            if known.get(price) is not None:
                known[price] = float(known[price])
        return cls(**known)

    def unpriced(self) -> EvalModel:
        return replace(self, **dict.fromkeys(PRICE_FIELDS))

    def with_frames(self, frames: int) -> EvalModel:
        return replace(self, frames=frames)


PRICE_FIELDS = ("input_price_per_million", "output_price_per_million")

_KEY = re.compile(r"^(?P<model>.+?)(?:__(?P<provider>gemini))?__(?P<protocol>standard|caption)"
                  r"__(?:f(?P<frames>\d+)|(?P<video>video))"
                  r"(?:__verified-(?P<batch>.+))?$")


def model_from_key(key: str) -> EvalModel | None:
    """The entry a key spells out by itself, for a partition added in the UI without a registry entry:
    `<model>[__gemini]__<protocol>__<f<frames>|video>[__verified-<batch>]`, base URL from the provider's
    environment (OPENAI_BASE_URL). None when the key is not of that shape."""
    match = _KEY.match(key)
    if match is None:
        return None
    batch = match.group("batch")
    return EvalModel(model=match.group("model"), protocol=match.group("protocol"),
                     provider=match.group("provider") or "openai",
                     frames=int(match.group("frames")) if match.group("frames") else DEFAULT_FRAMES,
                     qa_set=f"{VERIFIED_PREFIX}{batch}" if batch else SPLIT_QA_SET,
                     video_input="video_url" if match.group("video") else "frames")


def qa_set_batch(qa_set: str) -> str | None:
    """None for the test split, the batch name for `verified:<batch>`; anything else is an error."""
    if qa_set == SPLIT_QA_SET:
        return None
    if qa_set.startswith(VERIFIED_PREFIX) and qa_set[len(VERIFIED_PREFIX):].strip():
        return qa_set[len(VERIFIED_PREFIX):].strip()
    raise ValueError(f"question set {qa_set!r} is neither 'split' nor 'verified:<batch>'")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-") or "model"


def registry_with(registry: Mapping[str, Mapping[str, Any]], entry: EvalModel) -> dict[str, dict[str, Any]]:
    """The registry with `entry` added under its key; an existing key must hold the same entry,
    because its partition's results were computed with it (prices aside: the entry's prices replace
    the registered ones, and a price the entry leaves out keeps its registered value)."""
    updated = {k: dict(v) for k, v in registry.items()}
    existing = updated.get(entry.key)
    if existing is not None:
        registered = EvalModel.from_record(existing)
        if registered.unpriced() != entry.unpriced():
            raise ValueError(f"eval model {entry.key!r} is already registered as {existing}; "
                             "a different base URL or provider needs a different model name")
        entry = replace(entry, **{p: getattr(entry, p) if getattr(entry, p) is not None else getattr(registered, p)
                                  for p in PRICE_FIELDS})
    updated[entry.key] = entry.as_record()
    return updated


def registry_entry(registry: Mapping[str, Mapping[str, Any]], key: str) -> EvalModel:
    """The registered entry of `key`, else the one the key spells out (`model_from_key`)."""
    if key not in registry:
        spelled = model_from_key(key)
        if spelled is not None:
            return spelled
        raise KeyError(f"eval model {key!r} is not in the registry (known: {sorted(registry) or 'none'}); "
                       "add it with `haic evaluate` or `haic evaluate --register-only`, or name the partition "
                       "<model>[__gemini]__<standard|caption>__f<frames>[__verified-<batch>]")
    return EvalModel.from_record(registry[key])
