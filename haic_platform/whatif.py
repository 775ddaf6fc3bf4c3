"""What-if thresholds, shared by `haic whatif` and the `threshold_whatif` asset: the deployment's
settings with the assignments applied (as settings.yaml would apply them), the re-decision
(haic_core.whatif_engine) and contact sheets of the flips nearest the new threshold.

A sheet shows the frames the stage looked at (human_presence: its 16 presence instants;
action_filtered: its 1 fps samples; clips: 8 instants across the window) with the people the stage
stored for them (person_detections, pose_tracks), drawn by the stages' own `contact_sheet`. Only the
chosen few are decoded, and only for the picture: no verdict depends on them.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import ValidationError

from haic_core.whatif import Assignment, WhatIfPlan, plan
from haic_core.whatif_engine import WhatIfResult, what_if
from haic_resources.pose.contact_sheet import contact_sheet
from haic_resources.pose.estimator import Person
from haic_resources.storage.tables import TableStore

SHEET_STAGES = ("clips", "human_presence", "action_filtered")


def whatif_plan(assignments: Sequence[Assignment], settings) -> WhatIfPlan:
    """The re-decision plan for `assignments` over the deployment's `settings`: each stage's settings
    as a re-run would use them. Unknown sections or keys and values of the wrong type are errors
    naming the assignment, as in settings.yaml."""
    from haic_assets.stages import STAGES, settings_fields

    fields = settings_fields()
    given: dict[str, dict[str, Any]] = {}
    for a in assignments:
        if a.stage not in fields:
            raise ValueError(f"--set {a}: unknown stage {a.stage!r}; stages: {', '.join(sorted(fields))}")
        if a.setting not in fields[a.stage]:
            raise ValueError(f"--set {a}: {a.setting!r} is not a setting of {a.stage}; its settings are "
                             f"{', '.join(sorted(fields[a.stage]))}")
        given.setdefault(a.stage, {})[a.setting] = a.value
    effective, shared = {}, {}
    for spec in STAGES:
        own = {name: given[spec.settings_from.get(name, spec.name)][name] for name in spec.config_class.model_fields
               if name in given.get(spec.settings_from.get(name, spec.name), {})}
        config_class = spec.config_with_settings(settings)
        try:
            effective[spec.name] = config_class(**own).model_dump()
        except ValidationError as exc:
            problems = "; ".join(f"{spec.name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"--set: {problems}") from None
        shared[spec.name] = dict(spec.settings_from)
    return plan(assignments, effective, shared)


def run_whatif(conn, tables: TableStore, assignments: Sequence[Assignment], settings, source: str | None = None,
               partition: str | None = None) -> WhatIfResult:
    """The what-if over the stored ledger; ValueError when none of the assignments can be re-decided."""
    made = whatif_plan(assignments, settings)
    if not made.settings:
        raise ValueError("nothing to re-decide from stored values: " + "; ".join(f"{a}: {why}"
                                                                                  for a, why in made.not_redecided))
    return what_if(conn, made, source=source, partition=partition, tables_root=tables.local_root())


def flip_sheets(result: WhatIfResult, tables: TableStore, per_stage: int, log=None) -> dict[str, bytes]:
    """PNG contact sheets of the `per_stage` flips nearest the new threshold, each way, of each stage
    with frames (name -> PNG). A flip whose video is no longer at hand is skipped (logged)."""
    chosen = (result.flips[result.flips["stage"].isin(SHEET_STAGES)]
              .groupby(["stage", "new_verdict"], sort=False).head(max(0, per_stage)))
    sheets = {}
    for flip in chosen.itertuples(index=False):
        try:
            png = _flip_sheet(flip, tables)
        except (OSError, ValueError, KeyError) as exc:  # a picture must never fail the what-if
            if log is not None:
                log.warning(f"no contact sheet for {flip.stage} {flip.item_id}: {exc}")
            continue
        if png is not None:
            sheets[f"{flip.stage}__{flip.item_id}"] = png
    return sheets


def _flip_sheet(flip, tables: TableStore) -> bytes | None:
    from haic_resources.video.frame_reader import read_frames_at

    ledger = tables.read(f"ledger/{flip.stage}", flip.partition)
    row = ledger[ledger["item_id"] == flip.item_id].iloc[0]
    detail = json.loads(row["detail"]) if isinstance(row["detail"], str) else {}
    clip = _clip_window(tables, flip, detail)
    if clip is None:
        return None
    path, start_s, end_s = clip
    if flip.stage == "human_presence" and detail.get("timestamps_s"):
        times = [float(t) for t in detail["timestamps_s"]]
        detections = tables.read("person_detections", flip.partition)
        people = _stored_people(detections, flip.item_id, times, "presence_sample")
    elif flip.stage == "action_filtered":
        tracks = tables.read("pose_tracks", flip.partition)
        rows = tracks[tracks["clip_id"] == flip.item_id] if tracks is not None else pd.DataFrame()
        times = sorted(set(float(t) for t in rows["t"])) if len(rows) else list(np.linspace(start_s, end_s, 10)[1:-1])
        people = {t: [_person(r) for r in rows[rows["t"] == t].itertuples(index=False)] for t in times}
    else:
        times = [float(t) for t in np.linspace(start_s, end_s, 10)[1:-1]]
        people = {}
    sample = read_frames_at(path, times, start_s, end_s, long_side=480)
    size = np.array([sample.width, sample.height], dtype=np.float64)
    images = [f.image for f in sample.frames]
    drawn = [[_in_pixels(p, size * f.scale) for p in people.get(t, [])] for t, f in zip(times, sample.frames)]
    caption = (f"{flip.item_id}  {flip.old_verdict.upper()} -> {flip.new_verdict.upper()} {flip.new_code or ''}  "
               f"{flip.metric}={_number(flip.value)} vs {_number(flip.new_threshold)}  (stored: {flip.old_metric}="
               f"{_number(flip.old_value)} vs {_number(flip.old_threshold)})")
    return contact_sheet(images, drawn, caption, labels=[f"{t:.1f}s" for t in times], columns=8, tile_width=160)


def _clip_window(tables: TableStore, flip, detail: Mapping[str, Any]) -> tuple[str, float, float] | None:
    """(the video's local path, window start, end) of a flipped clip."""
    clips = tables.read("clips", flip.partition)
    if clips is not None and (clips["clip_id"] == flip.item_id).any():
        clip = clips[clips["clip_id"] == flip.item_id].iloc[0]
        return str(clip["local_path"]), float(clip["start_s"]), float(clip["end_s"])
    videos = tables.read("videos", flip.partition)
    if videos is None or "start_s" not in detail or not (videos["video_id"] == flip.parent_id).any():
        return None
    video = videos[videos["video_id"] == flip.parent_id].iloc[0]
    return str(video["local_path"]), float(detail["start_s"]), float(detail["end_s"])


def _stored_people(detections: pd.DataFrame | None, clip_id: str, times: list[float], flag: str) -> dict:
    if detections is None:
        return {}
    rows = detections[(detections["clip_id"] == clip_id) & detections[flag]]
    by_time: dict[float, list[Person]] = {}
    for t in times:
        near = rows[np.isclose(rows["t"].astype(float), t, atol=1e-3)]
        by_time[t] = [Person(box=np.asarray(r.box, dtype=np.float64), score=float(r.score),
                             keypoints=np.asarray(list(r.keypoints), dtype=np.float64).reshape(-1, 2),
                             keypoint_scores=np.asarray(r.keypoint_scores, dtype=np.float64))
                      for r in near.itertuples(index=False)]
    return by_time


def _person(track_row) -> Person:
    # A Parquet round trip makes the 17 x 3 list an array of arrays.
    keypoints = np.array([np.asarray(k, dtype=np.float64) for k in track_row.keypoints]).reshape(-1, 3)
    return Person(box=np.asarray(track_row.box, dtype=np.float64), score=float(track_row.score),
                  keypoints=keypoints[:, :2], keypoint_scores=keypoints[:, 2])


def _in_pixels(person: Person, size: np.ndarray) -> Person:
    """A stored person (normalized by the frame's size) in the pixels of the decoded image."""
    return Person(box=person.box * np.tile(size, 2), score=person.score, keypoints=person.keypoints * size,
                  keypoint_scores=person.keypoint_scores)


def _number(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):.6g}"
