"""Issue 25, part 3: the real stages on the GPU machine. `haic run` (the CLI, the Dagster job, its ledger) of one
shard of real clips twice, side by side: the GPU path (HAIC_VIDEO_DECODER=nvdec, the batched people model on
torch/CUDA) and the CPU path (PyAV decoding, the same models on ONNX Runtime, CPU). Then every item's verdict
in both ledgers, and which reader decoded each video.

    python bench/stage_run_issue25.py --media shared/media --webvid webvid_shaped --models shared/models --out s.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from measure import bench_parser  # bench/, this script's folder

SOURCE_YAML = "kind: generic\ncolumns: {{id: file, description: description, uri: file}}\nmedia_root: {media}\n"
SETTINGS = "clips:\n  workers: {workers}\nhuman_presence:\n  workers: {workers}\n"


def land(home: Path, media: Path, files: list[str], workers: int) -> str:
    folder = home / "landing" / "gpu"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,description"] + [f"{f},A person moves in front of the camera" for f in files]
    (folder / "shard.csv").write_text("\n".join(lines) + "\n")
    (folder / "source.yaml").write_text(SOURCE_YAML.format(media=media))
    (home / "settings.yaml").write_text(SETTINGS.format(workers=workers))
    return "gpu__shard.csv"


def run(home: Path, media: Path, partition: str, env: dict) -> dict:
    environ = {**os.environ, "HAIC_HOME": str(home), "HAIC_ALLOWED_MEDIA_ROOTS": str(media), **env}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "haic_cli", "run", partition], env=environ, capture_output=True,
                          text=True, timeout=900)
    return {"rc": done.returncode, "seconds": round(time.perf_counter() - t0, 1), "stdout": done.stdout[-1500:],
            "stderr": done.stderr[-3000:]}


def ledger(home: Path) -> list[dict]:
    from haic_resources.storage.warehouse import in_memory_warehouse

    con = in_memory_warehouse(home / "tables")
    rows = con.execute("SELECT stage, item_id, verdict, metric AS code, value, detail FROM ledger ORDER BY stage, item_id").fetchall()
    return [dict(zip(("stage", "item_id", "verdict", "code", "value", "detail"), r)) for r in rows]


def main() -> None:
    ap = bench_parser(__doc__, "media", "webvid", "models", "out")
    ap.add_argument("--workers", type=int, default=12)
    args = ap.parse_args()
    root = Path("/tmp/issue25_stage")
    media = args.webvid.resolve()
    files = sorted(p.name for p in media.glob("webvid_*.mp4"))
    models = {"HAIC_POSE_BACKEND": "batched", "HAIC_POSE_DETECTOR_MODEL": str((args.models / "yolox_nano.onnx").resolve()),
              "HAIC_POSE_MODEL": str((args.models / "rtmpose_t_random.onnx").resolve())}
    paths = {"gpu": {**models, "HAIC_VIDEO_DECODER": "nvdec", "HAIC_POSE_DEVICE": "cuda", "HAIC_POSE_ENGINE": "torch"},
             "cpu": {**models, "HAIC_VIDEO_DECODER": "cpu", "HAIC_POSE_DEVICE": "cpu", "HAIC_POSE_ENGINE": "onnxruntime"}}
    out: dict = {"shard": files}
    books = {}
    for name, env in paths.items():
        home = root / name
        partition = land(home, media, files, args.workers)
        out[name] = run(home, media, partition, env)
        try:
            books[name] = ledger(home)
        except Exception as exc:
            out[name]["ledger_error"] = f"{type(exc).__name__}: {exc}"
        args.out.write_text(json.dumps(out, indent=1, default=str))
        print(name, {k: v for k, v in out[name].items() if k in ("rc", "seconds")}, flush=True)
    if len(books) == 2:
        gpu = {(r["stage"], r["item_id"]): r for r in books["gpu"]}
        cpu = {(r["stage"], r["item_id"]): r for r in books["cpu"]}
        same = [k for k in gpu if k in cpu and gpu[k]["verdict"] == cpu[k]["verdict"]]
        differ = [{"item": k, "gpu": (gpu[k]["verdict"], gpu[k]["code"], gpu[k]["value"]),
                   "cpu": (cpu[k]["verdict"], cpu[k]["code"], cpu[k]["value"])}
                  for k in gpu if k in cpu and gpu[k]["verdict"] != cpu[k]["verdict"]]
        readers = {}
        for r in books["gpu"]:
            if r["stage"] == "clips" and r["detail"]:
                detail = json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]
                readers[r["item_id"].rsplit("-", 1)[0]] = detail.get("decoder")
        by_stage: dict[str, list[int]] = {}
        for k in set(gpu) | set(cpu):
            counts = by_stage.setdefault(k[0], [0, 0, 0])
            counts[0] += k in gpu
            counts[1] += k in cpu
            counts[2] += k in same
        out["comparison"] = {"items_same_verdict": len(same), "items_only_gpu": [k for k in gpu if k not in cpu][:20],
                             "items_only_cpu": [k for k in cpu if k not in gpu][:20], "differing": differ[:30],
                             "per_stage_gpu_cpu_same": by_stage, "reader_per_video": readers}
        print(json.dumps({k: v for k, v in out["comparison"].items() if k != "reader_per_video"}, default=str)[:3000])
        print("readers", readers)
    args.out.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
