"""Accuracy of the MoveNet default on the keypoint-annotated test images (COCO and OCHuman).

Predictions are matched to *annotated* people only (not every visible person is annotated), by
OKS (COCO object keypoint similarity, the COCO per-keypoint sigmas, the annotation's `area` as
the scale: segment area for COCO, box area for OCHuman as that set provides), greedily, highest
OKS first. Reports per dataset and overall: annotated people, recall at OKS ≥ 0.5 and ≥ 0.75,
mean OKS over annotated people (a missed person counts 0) and over matched people, and mean
keypoint error in pixels over visible keypoints of matched people.

    .venv/bin/python bench/eval_pose_accuracy.py [--long-side 384] [--media ../shared/media]
Writes bench/results/pose_accuracy_movenet.json.
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

from haic_resources.pose.estimator import make_pose_estimator  # noqa: E402

COCO_SIGMAS = np.array(
    [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
)
DATASETS = {"coco": "images/coco/test_coco.json", "ochuman": "images/ochuman/test_ochuman.json"}


def oks(pred_kps: np.ndarray, gt: np.ndarray, area: float) -> float:
    """COCO OKS of predicted (17, 2) keypoints against ground truth (17, 3) with visibility."""
    visible = gt[:, 2] > 0
    if not visible.any():
        return 0.0
    d2 = ((pred_kps - gt[:, :2]) ** 2).sum(axis=1)
    var = (2 * COCO_SIGMAS) ** 2
    e = d2 / var / (area + np.spacing(1)) / 2
    return float(np.exp(-e[visible]).mean())


def evaluate(estimator, media: Path) -> dict:
    per_dataset = {}
    all_rows = []
    for name, rel in DATASETS.items():
        ann = json.loads((media / rel).read_text())
        rows = []
        for img in ann["images"]:
            path = (media / rel).parent / img["file_name"]
            frame = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            people = estimator.estimate([frame])[0]
            gts = [a for a in ann["annotations"] if a["image_id"] == img["id"] and a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0)]
            matrix = np.array([[oks(p.keypoints, np.array(g["keypoints"], float).reshape(17, 3), g["area"]) for p in people] for g in gts]).reshape(len(gts), len(people))
            pairs = sorted(((matrix[i, j], i, j) for i in range(len(gts)) for j in range(len(people))), reverse=True)
            used_g, used_p, match = set(), set(), {}
            for s, i, j in pairs:
                if s > 0 and i not in used_g and j not in used_p:
                    used_g.add(i); used_p.add(j); match[i] = (j, s)  # fmt: skip
            for i, g in enumerate(gts):
                gt = np.array(g["keypoints"], float).reshape(17, 3)
                if i in match:
                    j, s = match[i]
                    vis = gt[:, 2] > 0
                    err = float(np.linalg.norm(people[j].keypoints[vis] - gt[vis, :2], axis=1).mean())
                    rows.append({"image": img["file_name"], "oks": s, "matched": True, "mean_kp_error_px": err})
                else:
                    rows.append({"image": img["file_name"], "oks": 0.0, "matched": False, "mean_kp_error_px": None})
        per_dataset[name] = summarize(rows)
        all_rows += rows
    return {"per_dataset": per_dataset, "overall": summarize(all_rows)}


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
    ap.add_argument("--long-side", type=int, default=384)
    ap.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pose_accuracy_movenet.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        est = make_pose_estimator("movenet", cache_dir=cache, input_long_side=args.long_side, min_person_score=0.2)
        result = {"model": "MoveNet MultiPose Lightning (float16 TFLite)", "input_long_side": args.long_side,
                  "min_person_score": 0.2, **evaluate(est, args.media)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for name, s in {**result["per_dataset"], "overall": result["overall"]}.items():
        print(f"{name:8s} people={s['annotated_people']:2d} recall@.5={s['recall_oks50']:.3f} recall@.75={s['recall_oks75']:.3f} "
              f"meanOKS(all)={s['mean_oks_all_annotated']:.3f} meanOKS(matched)={s['mean_oks_matched']:.3f} "
              f"kp_err={s['mean_keypoint_error_px']:.1f}px")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
