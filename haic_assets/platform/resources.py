"""The resources of this deployment, chosen in one place from HAIC_HOME and HAIC_* settings."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from dagster import EnvVar
from dagster_aws.s3 import S3Resource

from haic_resources.annotation.label_studio import LabelStudioResource
from haic_resources.storage.home import REPO_ROOT, env_number, env_setting, haic_home
from haic_resources.storage.s3 import s3_settings_from_env
from haic_resources.llm.resource import LLMResource
from haic_resources.llm.response_cap import DEFAULT_MAX_BATCH_RESULT_BYTES, DEFAULT_MAX_RESPONSE_BYTES
from haic_resources.pose.resource import PoseResource
from haic_resources.text.spacy_nlp import SpacyResource
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse_resource import WarehouseResource
from haic_assets.platform.io_manager import ParquetTablesIOManager

SAMPLES_DIR = REPO_ROOT / "samples"


def build_resources(stage_order: tuple[str, ...] = ()) -> dict:
    """Every resource, from HAIC_HOME and the HAIC_* environment; `stage_order` orders the funnel."""
    home = haic_home()
    s3 = s3_settings_from_env()
    extra_roots = [r for r in (env_setting("HAIC_ALLOWED_MEDIA_ROOTS") or "").split(":") if r]
    storage = StorageResource(
        home=str(home.root),
        tables_uri=env_setting("HAIC_TABLES_URI"),
        media_uri=env_setting("HAIC_MEDIA_URI"),
        landing_uri=env_setting("HAIC_LANDING_URI"),
        exports_uri=env_setting("HAIC_EXPORTS_URI"),
        annotations_uri=env_setting("HAIC_ANNOTATIONS_URI"),
        allowed_media_roots=[str(SAMPLES_DIR), *extra_roots],
        **fetch_policy_settings(),
        s3=S3Resource(endpoint_url=s3.endpoint_url, region_name=s3.region_name),
    )
    warehouse = WarehouseResource(database=str(home.warehouse), stage_order=list(stage_order))
    return {
        "storage": storage,
        "llm": llm_resource(),
        "pose": pose_resource(str(home.cache / "models"), storage.s3.endpoint_url, storage.s3.region_name),
        "warehouse": warehouse,
        "spacy_nlp": SpacyResource(),
        "annotation_tool": annotation_tool_resource(),
        "tables": ParquetTablesIOManager(storage=storage, warehouse=warehouse),
    }


def annotation_tool_resource() -> LabelStudioResource:
    """Label Studio from HAIC_LABEL_STUDIO_*; unconfigured (batches as files only) without URL and token."""
    # EnvVar keeps the token out of config, the UI and logs; Dagster reads it when the resource starts.
    token = EnvVar("HAIC_LABEL_STUDIO_TOKEN") if env_setting("HAIC_LABEL_STUDIO_TOKEN") else None
    return LabelStudioResource(url=env_setting("HAIC_LABEL_STUDIO_URL"), token=token,
                               document_root=env_setting("HAIC_LABEL_STUDIO_DOCUMENT_ROOT"),
                               url_expiry_s=env_number("HAIC_LABEL_STUDIO_URL_EXPIRY_S", str(7 * 24 * 3600), int))


def pose_resource(cache_dir: str, s3_endpoint_url: str | None = None, s3_region: str | None = None) -> PoseResource:
    """The people model from HAIC_POSE_* (defaults: the shipped YOLOX-nano, tiled for crowds, + MoveNet keypoints
    on each person's crop, on the CPU)."""
    return PoseResource(backend=env_setting("HAIC_POSE_BACKEND", "detector_movenet"),
                        nms_iou=env_number("HAIC_POSE_NMS_IOU", None, float),
                        movenet_tiles=env_number("HAIC_POSE_MOVENET_TILES", "2", int),
                        detector_tiles=env_number("HAIC_POSE_DETECTOR_TILES", "2", int),
                        detector_model=env_setting("HAIC_POSE_DETECTOR_MODEL"),
                        pose_model=env_setting("HAIC_POSE_MODEL"),
                        device=env_setting("HAIC_POSE_DEVICE", "cpu"),
                        engine=env_setting("HAIC_POSE_ENGINE", "auto"),
                        half=env_setting("HAIC_POSE_HALF", "") in ("1", "true"),
                        pose_config=env_setting("HAIC_POSE_CONFIG"),
                        detector_config=env_setting("HAIC_POSE_DETECTOR_CONFIG"),
                        cache_dir=cache_dir, s3_endpoint_url=s3_endpoint_url, s3_region=s3_region)


def pose_version() -> str:
    """A code-version part for the stages whose decisions the people model makes: the configured model's
    settings (not where its files are cached, nor the device, engine or precision it runs with), hashed. Another backend, model
    file, score or tile setting makes their partitions stale; `haic recurate` then re-runs them."""
    settings = dataclasses.asdict(pose_resource(cache_dir="").settings())
    for where in ("cache_dir", "s3", "device", "engine", "half"):
        settings.pop(where)
    return "pose-" + hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def fetch_policy_settings() -> dict:
    """The remote-fetch policy from HAIC_FETCH_* (comma-separated lists); unset keys keep the safe defaults."""
    names = {"fetch_allow_hosts": "HAIC_FETCH_ALLOW_HOSTS", "fetch_deny_hosts": "HAIC_FETCH_DENY_HOSTS",
             "fetch_open_networks": "HAIC_FETCH_OPEN_NETWORKS", "fetch_content_types": "HAIC_FETCH_CONTENT_TYPES",
             "fetch_s3_buckets": "HAIC_FETCH_S3_BUCKETS"}
    return {field: [v.strip() for v in env_setting(var).split(",") if v.strip()]
            for field, var in names.items() if env_setting(var) is not None}


def configured_llm_provider() -> str:
    """gemini | openai | '' — from HAIC_LLM_PROVIDER, else from which provider's settings are present."""
    chosen = env_setting("HAIC_LLM_PROVIDER")
    if chosen:
        return chosen
    if env_setting("GEMINI_API_KEY"):
        return "gemini"
    if env_setting("OPENAI_API_KEY") or env_setting("OPENAI_BASE_URL"):
        return "openai"
    return ""


def llm_resource() -> LLMResource:
    provider = configured_llm_provider()
    key_var = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY"}.get(provider)
    # EnvVar keeps the key out of config, the UI and logs; Dagster reads it when the resource starts.
    api_key = EnvVar(key_var) if key_var and env_setting(key_var) else None
    base_url = env_setting("OPENAI_BASE_URL") if provider == "openai" else env_setting("GEMINI_BASE_URL")
    return LLMResource(
        provider=provider, model=env_setting("HAIC_LLM_MODEL", ""), api_key=api_key, base_url=base_url,
        concurrency=env_number("HAIC_LLM_CONCURRENCY", "8", int),
        max_attempts=env_number("HAIC_LLM_MAX_ATTEMPTS", "6", int),
        input_price_per_million=env_number("HAIC_LLM_INPUT_PRICE", "0", float),
        output_price_per_million=env_number("HAIC_LLM_OUTPUT_PRICE", "0", float),
        max_response_bytes=env_number("HAIC_LLM_MAX_RESPONSE_BYTES", str(DEFAULT_MAX_RESPONSE_BYTES), int),
        max_batch_result_bytes=env_number("HAIC_LLM_MAX_BATCH_RESULT_BYTES", str(DEFAULT_MAX_BATCH_RESULT_BYTES), int),
        batch_discount=env_number("HAIC_LLM_BATCH_DISCOUNT", "0.5", float),
        cache_dir=str(haic_home().cache / "llm"),
    )


def llm_version(resource: LLMResource) -> str:
    """Provider and model as part of the LLM stages' code version: a new model makes them stale."""
    return f"{resource.provider or 'none'}:{resource.model_name or 'none'}"
