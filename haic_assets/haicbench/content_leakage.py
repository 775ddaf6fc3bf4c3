"""haicbench_content_leakage: candidate benchmark clips (every batch's verified QA) whose footage is also
in HAICTrain under another id (difference hashes of sampled frames; haic_core/evaluation/content_leakage.py).
It runs before the split (the haicbench_release job), which leaves those clips out and records the pair."""

from pathlib import Path

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.accumulation.sampling import uniform_timestamps
from haic_core.decisions import dropped, error, kept
from haic_core.evaluation.content_leakage import (DEFAULT_MAX_BITS, DEFAULT_MIN_SHARE, difference_hash,
                                                  leaked_pairs, same_source_file)
from haic_resources.video.frame_reader import read_frames_at
from haic_resources.video.isolation import run_isolated
from haic_resources.video.probe import probe_video_in_process
from haic_platform.evaluation.runner import clip_video
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage

LEAKAGE_COLUMNS = {
    "bench_clip_id": "the candidate HAICBench clip (left out of the split)",
    "train_clip_id": "the HAICTrain clip that shows the same footage",
    "matched_share": "share of the benchmark clip's sampled frames that match a frame of the training clip",
    "median_bits": "median difference-hash distance of the matched frames, of 64 bits",
    "method": "how the pair was found: frame hashes, or the same source file (sha256)",
}


class ContentLeakageConfig(Config):
    frames: int = Field(default=8, ge=1, description="frames hashed per clip, uniformly over it")
    max_bits: int = Field(default=DEFAULT_MAX_BITS, ge=0, le=64, description="of 64: two frames within this are the same picture")
    min_share: float = Field(default=DEFAULT_MIN_SHARE, ge=0.0, le=1.0,
                             description="share of a benchmark clip's frames that must match one training clip")
    video_root: str = Field(default="", description="folder with <clip_id>.mp4 for benchmark clips the platform "
                                                    "did not cut itself")
    workers: int = Field(default=2, ge=1)
    timeout_s: float = Field(default=60.0, gt=0.0, description="per clip")


def _source_file_pairs(tables, bench: pd.DataFrame, train: pd.DataFrame, cut: pd.DataFrame) -> list:
    """Pairs whose clips were cut from byte-identical source files (the videos stage's sha256)."""
    videos = tables.read_all("videos")
    if videos.empty or "sha256" not in videos or "video_id" not in cut:
        return []
    digest = dict(zip(videos["video_id"], videos["sha256"]))
    video_of = dict(zip(cut["clip_id"], cut["video_id"]))
    if "video_id" in bench:
        video_of.update(zip(bench["clip_id"], bench["video_id"]))

    def sources(clip_ids) -> dict:
        return {c: digest.get(video_of.get(c)) for c in sorted(set(clip_ids))}

    return same_source_file(sources(bench["clip_id"]), sources(train["clip_id"]) if len(train) else {})


def frame_hashes(task: tuple[str, str, int]) -> list[int]:
    """In a child process: the difference hashes of `count` uniformly sampled frames of one clip."""
    _, path, count = task
    probe = probe_video_in_process(path)
    sample = read_frames_at(path, uniform_timestamps(0.0, probe.duration_s, count), 0.0, probe.duration_s,
                            long_side=64)
    return [difference_hash(frame.image) for frame in sample.frames]


@partitioned_stage("haicbench_content_leakage", ContentLeakageConfig, partitions=None,
                   deps=("qa_verified", "haic_train"), column_docs=LEAKAGE_COLUMNS)
def haicbench_content_leakage(stage: StageContext, config: ContentLeakageConfig) -> StageResult:
    """Candidate HAICBench clips (verified QA of every batch) that show the same footage as a HAICTrain clip
    (re-uploads, re-cuts under another id): one row per suspect pair, one ledger row per benchmark clip.
    haicbench_split leaves these clips out."""
    tables = stage.storage.tables()
    split = tables.read_all("qa_verified")
    if split.empty:
        raise StageFailure("no verified HAICBench QA yet: materialize qa_verified for an annotation batch first")
    train = tables.read_all("haic_train")
    cut = tables.read_all("action_filtered")
    paths = dict(zip(cut["clip_id"], cut["clip_path"])) if len(cut) and "clip_path" in cut else {}
    bench_ids = sorted(set(split["clip_id"]))
    train_ids = sorted(set(train["clip_id"])) if len(train) else []
    if not train_ids:  # nothing to compare with: no frame is decoded
        return StageResult(pd.DataFrame(columns=list(LEAKAGE_COLUMNS)),
                           [kept(c, "no HAICTrain clips to compare with", item_kind="clip") for c in bench_ids],
                           metadata={"leaked_clips": 0, "bench_clips_compared": 0, "train_clips_compared": 0},
                           preview=list(LEAKAGE_COLUMNS))

    def located(clip_id: str, bench: bool) -> str | None:
        if clip_id in paths and Path(paths[clip_id]).is_file():
            return str(paths[clip_id])
        found = clip_video(config.video_root, clip_id) if bench and config.video_root else None
        return str(found) if found else None

    tasks, decisions = [], []
    for clip_id, bench in [(c, True) for c in bench_ids] + [(c, False) for c in train_ids]:
        path = located(clip_id, bench)
        if path is None:
            if bench:
                decisions.append(error(clip_id, "clip video not found: content not compared", item_kind="clip"))
            continue
        tasks.append(("bench" if bench else "train", clip_id, path, config.frames))
    results = run_isolated(frame_hashes, [(t[1], t[2], t[3]) for t in tasks], workers=config.workers,
                           timeout_s=config.timeout_s)
    hashes = {"bench": {}, "train": {}}
    for task, result in zip(tasks, results):
        if result.ok:
            hashes[task[0]][task[1]] = result.value
        elif task[0] == "bench":
            decisions.append(error(task[1], f"hashing frames: {result.error}", item_kind="clip"))
    pairs = _source_file_pairs(tables, split, train, cut) + leaked_pairs(hashes["bench"], hashes["train"],
                                                                          config.max_bits, config.min_share)
    first_match = {}
    for pair in pairs:
        first_match.setdefault(pair.bench_clip_id, pair)
    for clip_id in sorted(hashes["bench"]):
        pair = first_match.get(clip_id)
        if pair is None:
            decisions.append(kept(clip_id, f"no HAICTrain clip shows the same footage ({len(hashes['train'])} compared)",
                                  item_kind="clip"))
        else:
            decisions.append(dropped(clip_id, f"same footage as HAICTrain clip {pair.train_clip_id}", item_kind="clip",
                                     metric="matched_share", value=pair.matched_share, threshold=config.min_share,
                                     detail={"method": pair.method}))
    table = pd.DataFrame([(p.bench_clip_id, p.train_clip_id, p.matched_share, p.median_bits, p.method)
                          for p in pairs], columns=list(LEAKAGE_COLUMNS))
    table = table.drop_duplicates(["bench_clip_id", "train_clip_id"]).reset_index(drop=True)
    stage.log.info(f"content leakage: {len(first_match)} of {len(hashes['bench'])} benchmark clips share footage "
                   f"with HAICTrain ({len(hashes['train'])} training clips compared)")
    return StageResult(table, decisions, metadata={"leaked_clips": len(first_match),
                                                   "bench_clips_compared": len(hashes["bench"]),
                                                   "train_clips_compared": len(hashes["train"])},
                       preview=list(LEAKAGE_COLUMNS))
