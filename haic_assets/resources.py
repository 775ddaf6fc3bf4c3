"""The resources of this deployment, chosen in one place from HAIC_HOME and HAIC_* settings."""

from __future__ import annotations

from dagster_aws.s3 import S3Resource

from haic_resources.home import REPO_ROOT, env_setting, haic_home
from haic_resources.spacy_nlp import SpacyResource
from haic_resources.storage import StorageResource
from haic_resources.warehouse import WarehouseResource
from haic_assets.io_manager import ParquetTablesIOManager

SAMPLES_DIR = REPO_ROOT / "samples"


def build_resources() -> dict:
    home = haic_home()
    extra_roots = [r for r in (env_setting("HAIC_ALLOWED_MEDIA_ROOTS") or "").split(":") if r]
    storage = StorageResource(
        home=str(home.root),
        tables_uri=env_setting("HAIC_TABLES_URI"),
        media_uri=env_setting("HAIC_MEDIA_URI"),
        landing_uri=env_setting("HAIC_LANDING_URI"),
        allowed_media_roots=[str(SAMPLES_DIR), *extra_roots],
        s3=S3Resource(endpoint_url=env_setting("HAIC_S3_ENDPOINT_URL"),
                      region_name=env_setting("AWS_DEFAULT_REGION", "us-east-1")),
    )
    return {
        "storage": storage,
        "warehouse": WarehouseResource(database=str(home.warehouse)),
        "spacy_nlp": SpacyResource(),
        "tables": ParquetTablesIOManager(storage=storage),
    }
