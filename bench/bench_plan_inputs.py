"""The per-item costs `haic plan` multiplies out, measured here with the stages' own functions.

CPU-seconds are the process's CPU time (`time.process_time`: every thread of this process) spent
in one step, per item:
- metadata filter: the verb check (`verb_flags`, the stage's spaCy pipes) per description;
- on WebVid-shaped media (596 x 336 H.264, 18 s: make_webvid_shaped.py in bench when it is there,
  the GPU issue's workload, else bench/plan_webvid_shaped.py, the same recipe), per video: the probe
  (`probe_video_in_process`, local file), the scene split (`detect_scenes_in_process`, also per second
  of video per megapixel, which the plan scales to a source's resolution and length), the 5-20 s
  clips it makes (`split_video_into_clips` + `judge_clip_length`), their mean length, and the bytes
  per second of video (what downloading and storing cost);
- presence + pose per candidate clip on CPU: 16 presence frames + 1 fps pose frames decoded and run
  through the default pose model (MoveNet MultiPose), presence, tracklets and motion, on 4 test clips.
Tokens per call, from documented rates and our own texts (4/3 tokens per word):
- a caption's input: Gemini counts 258 tokens per second of video (1 frame per second; Gemini API
  docs, "Video understanding") over the mean clip length, plus the caption prompt; its output: the
  mean length of the well-formed captions in tests/corpus/captions;
- the judge (caption_judge.txt + a caption -> a score and reasons), QA generation (the five
  qa_*.txt prompts + a caption -> the corpus's GPT-4o-style answers), evaluation (eval_standard.txt
  with a clip and a question; eval_caption.txt with a clip; eval_caption_judge.txt with a caption and
  a question), with the question and options of the QA corpus.
Thinking tokens (Gemini 2.5 thinks before it answers, billed as output) are the plan's setting.
GPU seconds and the decode cores each GPU needs are not measured here: `haic plan` reads them from
webvid_shaped_figures.json in bench (the GPU issue's bench) when it exists.

Writes bench/plan_inputs.json (checked in: `haic plan` reads it), each figure with its unit, how
it was measured and the run's date and machine.

    .venv/bin/python bench/bench_plan_inputs.py [--media ../shared/media] [--webvid-shaped DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import plan_webvid_shaped  # noqa: E402
from bench_metadata_filter import descriptions  # noqa: E402
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


def webvid_shaped(media: Path, out: Path) -> list[Path]:
    """The WebVid-shaped videos: made by the GPU issue's script when it is in the tree (the same media
    its GPU figures come from), else by ours."""
    if not sorted(out.glob("webvid_*.mp4")):
        other = REPO / "bench" / "make_webvid_shaped.py"
        if other.is_file():
            subprocess.run([sys.executable, str(other), "--media", str(media), "--out", str(out)], check=True)
        else:
            plan_webvid_shaped.make(media, out)
    return sorted(out.glob("webvid_*.mp4"))


def words(path: Path) -> int:
    """Words of a prompt template as sent (its `# ` header lines are not)."""
    return sum(len(line.split()) for line in path.read_text().splitlines() if not line.startswith("# "))


def token_figures(mean_clip_s: float) -> dict:
    prompts = REPO / "haic_resources/llm/prompts"
    corpus = REPO / "tests/corpus"
    expected = json.loads((corpus / "captions/expected.json").read_text())
    caption_words = statistics.mean(len((corpus / f"captions/{case}.txt").read_text().split())
                                    for case, e in expected.items() if e["verdict"] == "kept")
    answers = json.loads((corpus / "qa_answers/expected.json").read_text())
    gpt = [case for case, e in answers.items() if e["style"] == "gpt-4o" and e["verdict"] == "kept"]
    answer_words = statistics.mean(len((corpus / f"qa_answers/{case}.txt").read_text().split()) for case in gpt)
    qas = [qa for case in gpt for qa in answers[case]["qas"]]
    question_words = statistics.mean(len(" ".join([qa["question"], *qa["options"]]).split()) for qa in qas)
    qa_prompt_words = statistics.mean(words(path) for path in sorted(prompts.glob("qa_*.txt")))
    video = GEMINI_TOKENS_PER_VIDEO_SECOND * mean_clip_s
    t = TOKENS_PER_WORD
    return {
        "caption_input_tokens": figure(video + (words(prompts / "caption_recaption.txt") + 15) * t, "tokens per caption",
                                       f"{GEMINI_TOKENS_PER_VIDEO_SECOND} tokens per video second x {mean_clip_s:.1f} s "
                                       "(mean WebVid-shaped clip) + caption_recaption.txt with a 15-word description"),
        "caption_output_tokens": figure(caption_words * t, "tokens per caption",
                                        f"mean words of {sum(e['verdict'] == 'kept' for e in expected.values())} "
                                        "well-formed captions of tests/corpus/captions"),
        "judge_input_tokens": figure((words(prompts / "caption_judge.txt") + caption_words + 15) * t, "tokens per call",
                                     "caption_judge.txt + a corpus caption + a 15-word description"),
        "qa_input_tokens": figure((qa_prompt_words + caption_words) * t, "tokens per call",
                                  "mean of the five qa_*.txt prompts + a corpus caption (5 calls per caption)"),
        "qa_output_tokens": figure(answer_words * t, "tokens per call",
                                   f"mean words of {len(gpt)} GPT-4o-style answers of tests/corpus/qa_answers"),
        "eval_standard_input_tokens": figure(video + (words(prompts / "eval_standard.txt") + question_words) * t,
                                             "tokens per question", f"the clip's video tokens + eval_standard.txt + "
                                             f"a question and its options ({question_words:.0f} words, QA corpus)"),
        "eval_caption_input_tokens": figure(video + words(prompts / "eval_caption.txt") * t, "tokens per video",
                                            "the clip's video tokens + eval_caption.txt"),
        "eval_judge_input_tokens": figure((words(prompts / "eval_caption_judge.txt") + caption_words + question_words) * t,
                                          "tokens per question", "eval_caption_judge.txt + a caption + a question"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path,
                        default=Path(os.environ.get("HAIC_TEST_MEDIA", REPO.parent / "shared" / "media")))
    parser.add_argument("--webvid-shaped", type=Path, help="folder of WebVid-shaped videos (made there when empty)")
    parser.add_argument("--descriptions", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "plan_inputs.json")
    args = parser.parse_args()

    texts = descriptions(args.descriptions)
    tagger = SpacyResource().tagger()
    verb_flags(texts[:50], tagger)  # load and warm the pipes
    t_meta, _ = cpu(lambda: verb_flags(texts, tagger))

    with tempfile.TemporaryDirectory() as scratch:
        videos = webvid_shaped(args.media, args.webvid_shaped or Path(scratch))
        probe_s, scene_s, scene_s_per_s_mp, lengths, candidates, byte_rates = [], [], [], [], [], []
        for path in videos:
            t_probe, probe = cpu(lambda: probe_video_in_process(str(path)))
            t_scene, cuts = cpu(lambda: detect_scenes_in_process(str(path)))
            megapixels = probe.width * probe.height / 1e6
            probe_s.append(t_probe)
            scene_s.append(t_scene)
            scene_s_per_s_mp.append(t_scene / probe.duration_s / megapixels)
            byte_rates.append(path.stat().st_size / probe.duration_s)
            clips, _ = split_video_into_clips(path.stem, cuts.cut_times_s, cuts.cut_frames, probe.duration_s,
                                              probe.frame_count or 0, probe.fps or 25.0)
            kept = [c for c in clips if judge_clip_length(c).verdict == "kept"]
            candidates.append(len(kept))
            lengths += [c.length_s for c in kept]
            print(f"{path.name:20s} probe {t_probe:.3f} s  scene {t_scene:.3f} s ({probe.duration_s:.1f} s, "
                  f"{probe.width}x{probe.height}, {byte_rates[-1] / 1000:.0f} kB/s)  clips 5-20 s: {len(kept)}")

    with tempfile.TemporaryDirectory() as cache:
        pose = make_estimator(PoseSettings(cache_dir=cache, backend="movenet"))
        people_s = []
        for name in PEOPLE_CLIPS:
            path, window = str(args.media / "videos" / name), clip_window(args.media, name)
            sample_clip_people(path, *window, pose)  # warm-up
            t, _ = cpu(lambda: human_filter_chain(sample_clip_people(path, *window, pose), name))
            people_s.append(t)
            print(f"{name:45s} presence + pose {t:.3f} CPU-s")

    shaped = f"{len(videos)} WebVid-shaped videos (596x336 H.264, 18 s)"
    mean_clip_s = statistics.mean(lengths)
    figures = {
        "metadata_cpu_s_per_video": figure(t_meta / len(texts), "CPU-s per video",
                                           f"verb_flags over {len(texts)} synthetic WebVid-style descriptions"),
        "probe_cpu_s_per_video": figure(statistics.mean(probe_s), "CPU-s per video",
                                        f"probe_video_in_process, mean over {shaped}"),
        "scene_cpu_s_per_video": figure(statistics.mean(scene_s), "CPU-s per video",
                                        f"detect_scenes_in_process, mean over {shaped}"),
        "scene_cpu_s_per_video_s_per_mp": figure(statistics.mean(scene_s_per_s_mp),
                                                 "CPU-s per second of video per megapixel",
                                                 f"detect_scenes_in_process, mean over {shaped}"),
        "candidate_clips_per_video": figure(statistics.mean(candidates), "clips per video",
                                            f"5-20 s scenes from the cuts found, mean over {shaped} (joins of the "
                                            "shared videos: WebVid's stock footage is more often one shot)"),
        "mean_candidate_clip_s": figure(mean_clip_s, "s", f"mean length of the 5-20 s scenes of {shaped}"),
        "source_bytes_per_video_s": figure(statistics.mean(byte_rates), "bytes per second of video",
                                           f"file size / duration of {shaped}, x264 CRF 28 veryfast (a proxy: "
                                           "WebVid's own previews were not measured here)"),
        "presence_pose_cpu_s_per_clip": figure(statistics.mean(people_s), "CPU-s per candidate clip",
                                               f"MoveNet presence (16 frames) + 1 fps pose + tracklets + motion, "
                                               f"mean over {len(PEOPLE_CLIPS)} clips"),
        **token_figures(mean_clip_s),
    }
    report = {"bench": "bench/bench_plan_inputs.py", "run_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0]},
              "figures": figures}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
