"""The per-item costs `haic plan` multiplies out, measured here with the stages' own functions.

CPU-seconds are the process's CPU time (`time.process_time`: every thread of this process) spent
in one step, per item, on the real test media (../shared/media):
- metadata filter: the verb check (`verb_flags`, the stage's spaCy pipes) per description;
- probe: `probe_video_in_process` per video (local file: no download);
- scene split: `detect_scenes_in_process` per second of video per megapixel of frame (decoding
  cost grows with both; the plan scales it to the source's resolution);
- candidate clips per video: scenes of 5-20 s from the cuts found (`split_video_into_clips` +
  `judge_clip_length`), over the same videos (test media, not WebVid: a rough figure);
- presence + pose per candidate clip on CPU: 16 presence frames + 1 fps pose frames decoded and run
  through the default pose model (MoveNet MultiPose), presence, tracklets and motion.
Token estimates per caption, from documented rates and our own texts:
- input: Gemini samples video at 1 frame per second and counts 258 tokens per frame (Gemini API
  docs, "Video understanding"), over the mean length of the 5-20 s candidate clips measured
  here; plus the caption prompt (caption_recaption.txt with a 15-word description) at 4/3 tokens
  per word;
- output: the mean word count of the well-formed captions in tests/corpus/captions at 4/3 tokens
  per word (no thinking tokens: Gemini 2.5 Pro adds some, which the plan cannot know).
GPU seconds come from a run of bench/bench_plan_gpu.py on a GPU machine (`--gpu-results FILE`);
without one they are left null.

Writes bench/plan_inputs.json (checked in: `haic plan` reads it), each figure with its unit, how
it was measured and the run's date and machine.

    .venv/bin/python bench/bench_plan_inputs.py [--media ../shared/media]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_metadata_filter import descriptions  # noqa: E402
from bench_scene_split import VIDEOS  # noqa: E402
from haic_core.accumulation.metadata_filter import verb_flags  # noqa: E402
from haic_core.accumulation.scenes import judge_clip_length, split_video_into_clips  # noqa: E402
from haic_resources.pose.clip_people import sample_clip_people  # noqa: E402
from haic_resources.pose.settings import PoseSettings, make_estimator  # noqa: E402
from haic_resources.text.spacy_nlp import SpacyResource  # noqa: E402
from haic_resources.video.probe import probe_video_in_process  # noqa: E402
from haic_resources.video.scene_detect import detect_scenes_in_process  # noqa: E402
from tests.human_filter_chain import clip_window, human_filter_chain  # noqa: E402

PEOPLE_CLIPS = ("sam2_juggle_1p.mp4", "mmaction2_basketball_2p.mp4", "sam2_dog_1p.mp4",
                "mmaction2_demo_armwrestling.mp4")
GEMINI_TOKENS_PER_VIDEO_SECOND = 258  # 1 frame per second, 258 tokens per frame
TOKENS_PER_WORD = 4 / 3


def cpu(fn):
    start = time.process_time()
    value = fn()
    return time.process_time() - start, value


def figure(value, unit: str, how: str) -> dict:
    return {"value": round(value, 6) if isinstance(value, float) else value, "unit": unit, "how": how}


# bench/bench_gpu_human_filters.py (bench/GPU_NOTES.md, run 5, one H100): end to end in the stage's own shape
# (CPU decoding in 14 worker processes, the networks on the GPU), the GPU held for the whole of it, so a clip
# costs 1 / (clips per second) GPU-seconds.
GPU_END_TO_END = (25.5, "bench/bench_gpu_human_filters.py end to end on one H100 with 16 cores (bench/GPU_NOTES.md, "
                        "run 5, 2026-12-07), as human_presence's batched backend runs: CPU decoding in 14 processes "
                        "+ YOLOX-nano + RTMPose-t (torch fp32), 240 clips, 25.5 clips/s")


def gpu_figure(path: Path | None) -> dict:
    if path is None:
        clips_per_s, how = GPU_END_TO_END
        return figure(1.0 / clips_per_s, "GPU-s per candidate clip", how)
    gpu = json.loads(path.read_text())
    return figure(gpu["mean_model_gpu_s_per_clip"], "GPU-s per candidate clip",
                  f"{gpu['bench']} on {gpu['gpu']}: YOLOX-nano + RTMPose-t (ONNX Runtime {gpu['onnxruntime']}, "
                  f"{gpu['providers_used'][0]}) on the presence + pose frames, mean over {len(gpu['clips'])} clips; "
                  "decoding (CPU) not included")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path,
                        default=Path(os.environ.get("HAIC_TEST_MEDIA", REPO.parent / "shared" / "media")))
    parser.add_argument("--descriptions", type=int, default=3000)
    parser.add_argument("--gpu-results", type=Path, help="the JSON bench/bench_plan_gpu.py wrote on a GPU machine")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "plan_inputs.json")
    args = parser.parse_args()
    videos = [args.media / "videos" / name for name in VIDEOS]

    texts = descriptions(args.descriptions)
    tagger = SpacyResource().tagger()
    verb_flags(texts[:50], tagger)  # load and warm the pipes
    t_meta, _ = cpu(lambda: verb_flags(texts, tagger))

    probe_s, scene_s_per_s_mp, lengths, candidates = [], [], [], []
    for path in videos:
        t_probe, probe = cpu(lambda: probe_video_in_process(str(path)))
        t_scene, cuts = cpu(lambda: detect_scenes_in_process(str(path)))
        megapixels = probe.width * probe.height / 1e6
        probe_s.append(t_probe)
        scene_s_per_s_mp.append(t_scene / probe.duration_s / megapixels)
        clips, _ = split_video_into_clips(path.stem, cuts.cut_times_s, cuts.cut_frames, probe.duration_s,
                                          probe.frame_count or 0, probe.fps or 25.0)
        kept = [c for c in clips if judge_clip_length(c).verdict == "kept"]
        candidates.append(len(kept))
        lengths += [c.length_s for c in kept]
        print(f"{path.name:45s} probe {t_probe:.3f} s  scene {t_scene:.3f} s ({probe.duration_s:.1f} s, "
              f"{probe.width}x{probe.height})  clips 5-20 s: {len(kept)}")

    with tempfile.TemporaryDirectory() as cache:
        pose = make_estimator(PoseSettings(cache_dir=cache, backend="movenet"))
        people_s = []
        for name in PEOPLE_CLIPS:
            path, window = str(args.media / "videos" / name), clip_window(args.media, name)
            sample_clip_people(path, *window, pose)  # warm-up
            t, _ = cpu(lambda: human_filter_chain(sample_clip_people(path, *window, pose), name))
            people_s.append(t)
            print(f"{name:45s} presence + pose {t:.3f} CPU-s")

    prompt_words = len((REPO / "haic_resources/llm/prompts/caption_recaption.txt").read_text().split()) + 15
    corpus = REPO / "tests/corpus/captions"
    expected = json.loads((corpus / "expected.json").read_text())
    words = [len((corpus / f"{case}.txt").read_text().split()) for case, e in expected.items() if e["verdict"] == "kept"]
    mean_clip_s = statistics.mean(lengths)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    figures = {
        "metadata_cpu_s_per_video": figure(t_meta / len(texts), "CPU-s per video",
                                           f"verb_flags over {len(texts)} synthetic WebVid-style descriptions"),
        "probe_cpu_s_per_video": figure(statistics.mean(probe_s), "CPU-s per video",
                                        f"probe_video_in_process, mean over {len(videos)} test videos"),
        "scene_cpu_s_per_video_s_per_mp": figure(statistics.median(scene_s_per_s_mp),
                                                 "CPU-s per second of video per megapixel",
                                                 f"detect_scenes_in_process, median over {len(videos)} test videos"),
        "candidate_clips_per_video": figure(statistics.mean(candidates), "clips per video",
                                            f"5-20 s scenes from the cuts found, mean over {len(videos)} test videos"),
        "presence_pose_cpu_s_per_clip": figure(statistics.mean(people_s), "CPU-s per candidate clip",
                                               f"MoveNet presence (16 frames) + 1 fps pose + tracklets + motion, "
                                               f"mean over {len(PEOPLE_CLIPS)} clips"),
        "presence_pose_gpu_s_per_clip": gpu_figure(args.gpu_results),
        "mean_candidate_clip_s": figure(mean_clip_s, "s", "mean length of the 5-20 s scenes above"),
        "caption_input_tokens": figure(mean_clip_s * GEMINI_TOKENS_PER_VIDEO_SECOND + prompt_words * TOKENS_PER_WORD,
                                       "tokens per caption",
                                       f"{GEMINI_TOKENS_PER_VIDEO_SECOND} tokens per video second x mean clip length "
                                       f"+ {prompt_words} prompt words x 4/3"),
        "caption_output_tokens": figure(statistics.mean(words) * TOKENS_PER_WORD, "tokens per caption",
                                        f"mean words of {len(words)} well-formed corpus captions x 4/3"),
    }
    report = {"bench": "bench/bench_plan_inputs.py", "run_at": when,
              "machine": {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0]},
              "figures": figures}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
