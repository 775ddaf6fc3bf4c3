"""The whole code location loads, with every asset, job and automation, and warns about nothing of ours."""

from __future__ import annotations

import warnings

from haic_assets.definitions import build_definitions

ASSETS = {"landing_file", "raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "person_detections",
          "pose_tracks", "action_filtered", "captions", "caption_judgement", "haic_train", "annotation_tasks",
          "bench_captions",
          "qa_pairs", "qa_verified", "haicbench_split", "dataset_statistics", "haicbench_content_leakage",
          "eval_answers", "eval_results", "eval_leaderboard", "haic_train_release", "threshold_whatif"}


def test_definitions_load_without_warnings_from_our_code(tmp_path, monkeypatch):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions()
        graph = defs.resolve_asset_graph()
        jobs = {j.name for j in defs.resolve_all_job_defs()}
    ours = [w for w in caught if "haic_" in str(w.filename)]
    assert ours == [], [str(w.message) for w in ours]
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSETS
    assert {"curate_source", "annotation_task", "haicbench_batch", "haicbench_release", "evaluate_model", "eval_leaderboard_job",
            "whatif", "train_release"} <= jobs
    assert {s.name for s in defs.sensors} == {"landing_sensor", "recuration_sensor", "annotation_sensor",
                                           "llm_batch_sensor", "qa_batch_sensor", "eval_batch_sensor"}
    assert not list(defs.schedules or [])  # re-curation is the assets' automation conditions (recuration_sensor)
    # Every stage of a source shard carries its re-curation condition, the caption stages too (defined
    # with or without an LLM backend: here there is none).
    automated = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).automation_condition}
    assert automated == {"raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "person_detections",
                         "pose_tracks", "action_filtered", "captions", "caption_judgement", "haic_train"}
    per_item = ASSETS - {"haicbench_split", "dataset_statistics", "haicbench_content_leakage", "eval_leaderboard",
                         "haic_train_release", "threshold_whatif"}
    assert all(graph.get(k).partitions_def is not None for k in graph.get_all_asset_keys()
               if k.to_user_string() in per_item)


def test_the_asset_graph_leads_from_the_accumulation_to_the_benchmark_captions(tmp_path, monkeypatch):
    """action_filtered -> annotation_tasks -> bench_captions are real asset dependencies (Dagster's lineage)."""
    from dagster import AssetKey

    monkeypatch.setenv("HAIC_HOME", str(tmp_path))
    graph = build_definitions().resolve_asset_graph()
    assert graph.get(AssetKey("annotation_tasks")).parent_keys == {AssetKey("action_filtered")}
    assert AssetKey("annotation_tasks") in graph.get(AssetKey("bench_captions")).parent_keys
    assert AssetKey("bench_captions") in graph.get(AssetKey("qa_pairs")).parent_keys


def test_raw_metadata_reads_the_observed_landing_files(tmp_path, monkeypatch):
    """The landing files are an external asset upstream of raw_metadata; the main job never materializes them."""
    from dagster import AssetKey

    monkeypatch.setenv("HAIC_HOME", str(tmp_path))
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey("raw_metadata")).parent_keys == {AssetKey("landing_file")}
    assert not graph.get(AssetKey("landing_file")).is_materializable
    job_keys = defs.resolve_job_def("curate_source").asset_layer.selected_asset_keys
    assert AssetKey("landing_file") not in job_keys and AssetKey("raw_metadata") in job_keys


def test_the_definitions_are_the_same_with_and_without_an_llm_backend(tmp_path, monkeypatch):
    """The caption stages are defined, in the main job and under automation, in every environment: what
    the backend changes is only whether their conditions request them (platform/automation.py)."""
    from tests.helpers import without_llm

    monkeypatch.setenv("HAIC_HOME", str(tmp_path))
    without_llm(monkeypatch)

    def shape():
        defs = build_definitions()
        graph = defs.resolve_asset_graph()
        main = defs.resolve_job_def("curate_source").asset_layer.selected_asset_keys
        return ({k.to_user_string() for k in graph.get_all_asset_keys()}, {k.to_user_string() for k in main},
                {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).automation_condition})

    without = shape()
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaTEST-definitions-0123456789")
    assert shape() == without
    assert {"captions", "caption_judgement", "haic_train"} <= without[1] & without[2]
