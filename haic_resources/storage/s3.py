"""The one S3 client set-up: endpoint (MinIO, moto, AWS) and region, credentials from the usual
AWS environment variables. Picklable settings, so a child process builds the same client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    region_name: str | None = None

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url or None, region_name=self.region_name or None)


def s3_settings_from_env() -> S3Settings:
    """The deployment's S3 endpoint and region (HAIC_S3_ENDPOINT_URL, AWS_DEFAULT_REGION)."""
    from haic_resources.storage.home import env_setting

    return S3Settings(endpoint_url=env_setting("HAIC_S3_ENDPOINT_URL"),
                      region_name=env_setting("AWS_DEFAULT_REGION", "us-east-1"))
