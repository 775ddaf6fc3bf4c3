"""The stages in pipeline order, by name: the order haic_assets/stages.py builds its STAGES in, and the
order the funnel and `haic why` list stages in. A plain tuple, so a command that only reads the
ledger (`haic why`, `haic funnel`) need not import the stages' Dagster definitions to order them."""

PIPELINE_STAGES: tuple[str, ...] = (
    # 1. action video accumulation
    "raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "pose_tracks", "action_filtered",
    # 2. HAICTrain
    "captions", "caption_judgement", "haic_train", "haic_train_release",
    # 3. HAICBench (the content-leakage guard runs before the split it guards)
    "annotation_tasks", "bench_captions", "qa_pairs", "qa_verified", "haicbench_content_leakage", "haicbench_split",
    "dataset_statistics",
    # 4. evaluation (the paper, section 4)
    "eval_answers", "eval_leaderboard",
    # 5. the curator's tools over the ledger
    "threshold_whatif",
)
