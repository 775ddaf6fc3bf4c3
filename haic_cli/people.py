"""`haic people FILE`: the people the presence test sees in an image or in a clip's 16 presence samples.

Runs the configured people model (PoseResource from HAIC_POSE_*, `--backend` to try another) as
the human_presence stage does: a clip is probed and sampled at its 16 uniform instants in a
killable child, each frame resized to the model's input long side; an image is resized the same
way. Per frame it prints the people that count (as the presence stage counts them: score and a body of
confident keypoints), their count and box coverage (union; the sum beside it), and the boxes that are not
people; `--json` prints the same as one JSON document with boxes and keypoints in the file's own pixels;
`--sheet PATH` writes a contact sheet of the frames.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from haic_core.accumulation.presence import frame_people, person_mask
from haic_core.accumulation.sampling import uniform_timestamps
from haic_resources.pose.estimator import POSE_BACKENDS, Person, boxes_of, keypoint_scores_of, scores_of
from haic_resources.pose.settings import PoseSettings, make_estimator
from haic_resources.video.item_error import ItemError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# A clip's sampling in its child process may take this long before it is an error (the stage's default).
CLIP_TIMEOUT_S = 300.0


def register(sub) -> None:
    p = sub.add_parser("people", help="people, count and coverage in an image or a clip's presence samples")
    p.add_argument("file", type=Path, help="an image, or a video whose whole length is one clip")
    p.add_argument("--json", action="store_true", help="print JSON (boxes and keypoints in the file's pixels)")
    p.add_argument("--backend", choices=POSE_BACKENDS, help="people model (default: HAIC_POSE_BACKEND's)")
    p.add_argument("--sheet", type=Path, help="write a contact sheet PNG of the frames here")
    p.set_defaults(func=cmd_people)


# The backends that read an ONNX person detector from `detector_model` (mmpose reads it too, unless an mmdet
# config is set: then it is an mmdet checkpoint), and those that read an RTMPose ONNX from `pose_model`.
ONNX_DETECTOR_BACKENDS = ("detector_movenet", "onnx", "batched", "mmpose")
RTMPOSE_ONNX_BACKENDS = ("onnx", "batched")


def configured_pose(backend: str | None) -> PoseSettings:
    """The deployment's people model settings (HAIC_POSE_*), with `backend` chosen instead if given.

    Another backend keeps the deployment's model files where it reads the same kind of file
    (HAIC_POSE_DETECTOR_MODEL for every backend with an ONNX detector, HAIC_POSE_MODEL between the RTMPose
    backends) and drops them where it would misread them (an mmpose checkpoint is no RTMPose ONNX)."""
    from haic_assets.platform.resources import build_resources

    settings = build_resources()["pose"].settings()
    if backend is None or backend == settings.backend:
        return settings
    onnx_detector = settings.detector_model if settings.detector_config is None else None
    return dataclasses.replace(
        settings, backend=backend,
        detector_model=onnx_detector if backend in ONNX_DETECTOR_BACKENDS else None,
        pose_model=settings.pose_model if {backend, settings.backend} <= set(RTMPOSE_ONNX_BACKENDS) else None,
        pose_config=settings.pose_config if backend == "mmpose" else None, detector_config=None)


@dataclasses.dataclass(frozen=True)
class FramePeople:
    time_s: float | None           # None for an image
    image: np.ndarray              # RGB, the model's frame (people in `width` × `height` pixels)
    people: list[Person]           # every person the model returned, in the model frame's pixels
    width: int
    height: int


def image_people(path: Path, pose: PoseSettings) -> tuple[list[FramePeople], tuple[int, int]]:
    from haic_resources.video.frame_reader import resized_size

    bgr = cv2.imread(str(path))
    if bgr is None:
        raise ValueError(f"{path} is not a readable image")
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = image.shape[:2]
    estimator = make_estimator(pose)
    rw, rh = resized_size(w, h, estimator.input_long_side)
    if (rw, rh) != (w, h):
        image = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA if rw < w else cv2.INTER_LINEAR)
    return [FramePeople(None, image, estimator.estimate([image])[0], rw, rh)], (w, h)


def clip_people(path: Path, pose: PoseSettings, samples: int) -> tuple[list[FramePeople], tuple[int, int]]:
    from haic_resources.pose.clip_people import PeopleTask, sample_people
    from haic_resources.storage.disk_full import disk_full_error
    from haic_resources.video.isolation import run_isolated
    from haic_resources.video.probe import probe_video

    probe = probe_video(path)
    times = uniform_timestamps(0.0, probe.duration_s, samples)
    task = PeopleTask(clip_id=path.name, path=str(path), start_s=0.0, end_s=probe.duration_s, pose=pose,
                      presence_samples=samples, keep_images=True, only=tuple(times))
    result = run_isolated(sample_people, [task], workers=1, timeout_s=CLIP_TIMEOUT_S)[0]
    if not result.ok:
        if disk_full_error(result.exception) is not None:
            raise result.exception  # the machine's state, said as such by haic's error handler
        raise RuntimeError(f"sampling {path.name}: {result.error}")
    sample = result.value
    frames = [FramePeople(t, image, people, sample.width, sample.height)
              for t, image, people in zip(sample.times, sample.images, sample.people)]
    return frames, (probe.width, probe.height)


def cmd_people(args: argparse.Namespace) -> int:
    from haic_assets.accumulation.human_presence import HumanPresenceConfig

    presence = HumanPresenceConfig()
    pose = configured_pose(args.backend)
    if not args.file.is_file():
        print(f"not a file: {args.file}", file=sys.stderr)
        return 2
    is_image = args.file.suffix.lower() in IMAGE_SUFFIXES
    try:
        frames, (file_w, file_h) = (image_people(args.file, pose) if is_image
                                    else clip_people(args.file, pose, presence.samples))
    except (FileNotFoundError, ValueError, RuntimeError, ItemError) as exc:  # a missing model, an unreadable file
        print(f"haic people: {exc}", file=sys.stderr)
        return 2
    report, counted_people = [], []
    rule = dict(min_person_score=presence.min_person_score, min_person_keypoints=presence.min_person_keypoints,
                person_keypoint_score=presence.person_keypoint_score)
    for frame in frames:
        scores, keypoint_scores = scores_of(frame.people), keypoint_scores_of(frame.people)
        counted = [p for p, is_person in zip(frame.people, person_mask(scores, keypoint_scores, **rule)) if is_person]
        seen = frame_people(boxes_of(frame.people), scores, frame.width, frame.height, keypoint_scores,
                            coverage_mode=presence.coverage_mode, **rule)
        counted_people.append(counted)
        sx, sy = file_w / frame.width, file_h / frame.height  # model frame → file pixels
        report.append({
            "time_s": None if frame.time_s is None else round(frame.time_s, 3),
            "count": seen.count, "coverage": round(seen.coverage, 4),
            "coverage_union": round(seen.coverage_union, 4), "coverage_sum": round(seen.coverage_sum, 4),
            "not_people": [{"score": n[0], "confident_keypoints": n[1], "box_coverage": n[2]} for n in seen.not_people],
            "people": [{"box": [round(float(v), 1) for v in p.box * [sx, sy, sx, sy]], "score": round(p.score, 3),
                        "keypoints": [[round(float(x * sx), 1), round(float(y * sy), 1), round(float(s), 3)]
                                      for (x, y), s in zip(p.keypoints, p.keypoint_scores)]}
                       for p in counted],
        })
    if args.sheet:
        from haic_resources.pose.contact_sheet import contact_sheet

        caption = (f"{args.file.name}  {pose.backend}  people: score >= {presence.min_person_score} and "
                   f">= {presence.min_person_keypoints} keypoints  counts={[r['count'] for r in report]}")
        labels = [("" if r["time_s"] is None else f"{r['time_s']:.1f}s ") + f"n={r['count']} cov={r['coverage']:.2f}"
                  for r in report]
        contact_sheet([f.image for f in frames], counted_people, caption, labels=labels, columns=4 if len(frames) > 1 else 1,
                      tile_width=320 if len(frames) > 1 else 640, path=args.sheet)
    if args.json:
        print(json.dumps({"file": str(args.file), "backend": pose.backend, "detector_model": pose.detector_model,
                          "frames": report}))
        return 0
    print(f"{args.file.name}: {pose.backend}, people: score >= {presence.min_person_score} and >= "
          f"{presence.min_person_keypoints} keypoints scored >= {presence.person_keypoint_score}, {file_w}x{file_h} px")
    for r in report:
        when = "image" if r["time_s"] is None else f"{r['time_s']:7.2f} s"
        boxes = "  ".join(f"[{b[0]:.0f},{b[1]:.0f},{b[2]:.0f},{b[3]:.0f}] {p['score']:.2f}"
                          for p in r["people"] for b in [p["box"]])
        nobody = f"  + {len(r['not_people'])} without a body" if r["not_people"] else ""
        print(f"{when}  count {r['count']:2d}  coverage {r['coverage']:.3f} (sum {r['coverage_sum']:.3f})  {boxes}{nobody}")
    if args.sheet:
        print(f"contact sheet: {args.sheet}")
    return 0
