"""Metadata-filter throughput: descriptions per second, against plain `nlp.pipe` with the full pipeline.

Both run in this process on the same 10,000+ WebVid-style descriptions. The baseline is what a
first implementation would do: load en_core_web_sm whole and pipe every description through it.

    .venv/bin/python bench/bench_metadata_filter.py [--n 12000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import spacy

from haic_core.accumulation.metadata_filter import verb_flags
from haic_resources.text.spacy_nlp import SpacyResource

SUBJECTS = ["Young woman", "Man", "Business man", "Little girl", "Two friends", "Group of people", "Senior couple",
            "Teenage boy", "Female doctor", "Chef", "Athlete", "Happy family", "Asian woman", "Construction worker"]
VERBS = ["walking", "running", "dancing", "jumps", "smiles and waves", "is cooking", "playing guitar", "talks on the phone",
         "typing on a laptop", "rides a bicycle", "drinking coffee", "lifting weights", "swims", "climbs a rock"]
PLACES = ["in the park", "on the beach at sunset", "in a modern office", "in the kitchen", "on a city street",
          "in slow motion", "at home", "in the gym", "in a forest", "near the lake", "4k footage", "close-up"]
STILLS = ["Aerial view of {p}", "Beautiful landscape {p}", "Time lapse of clouds {p}", "Abstract background {p}",
          "Close-up of flowers {p}", "Night city lights {p}"]


def descriptions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.25:
            out.append(rng.choice(STILLS).format(p=rng.choice(PLACES)))
        else:
            out.append(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(PLACES)}"
                       + rng.choice(["", ".", " stock video", f" {rng.randint(1, 9999)}"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=12000)
    args = parser.parse_args()
    texts = descriptions(args.n)
    resource = SpacyResource()
    ours = resource.tagger()
    full = spacy.load(next(n for n in resource.model_names if spacy.util.is_package(n)))
    distinct = len(set(texts))

    t0 = time.perf_counter()
    flags = verb_flags(texts, ours, batch_size=resource.batch_size)
    ours_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    baseline = [any(t.pos_ == "VERB" for t in doc) for doc in full.pipe(texts)]
    base_s = time.perf_counter() - t0

    agree = sum(a == b for a, b in zip(flags, baseline)) / len(texts)
    result = {
        "descriptions": len(texts), "distinct": distinct,
        "ours_s": round(ours_s, 3), "ours_per_s": round(len(texts) / ours_s),
        "baseline_full_pipe_s": round(base_s, 3), "baseline_per_s": round(len(texts) / base_s),
        "speedup": round(base_s / ours_s, 2), "verdict_agreement": round(agree, 4),
        "components_ours": list(ours.pipe_names), "components_baseline": list(full.pipe_names),
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "metadata_filter.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
