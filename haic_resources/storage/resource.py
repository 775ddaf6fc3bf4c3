"""Where tables, media, landing shards, exports and annotations live: folders under HAIC_HOME, or S3 prefixes.

Every read and write of stored data goes through one of these stores (the one sink API).
"""


from pathlib import Path

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from haic_resources.storage.home import HomeLayout
from haic_resources.storage.object_store import ObjectStore, open_object_store
from haic_resources.storage.s3 import S3Settings
from haic_resources.storage.tables import TableStore


class StorageResource(ConfigurableResource):
    """HAIC_HOME plus optional object-storage locations for tables, media and the landing zone."""

    home: str = Field(description="HAIC_HOME: the directory for everything the platform writes")
    tables_uri: str | None = Field(default=None, description="s3://bucket/prefix for tables (default: HAIC_HOME/tables)")
    media_uri: str | None = Field(default=None, description="s3://bucket/prefix for media (default: HAIC_HOME/media)")
    landing_uri: str | None = Field(default=None, description="s3://bucket/prefix watched for shards (default: HAIC_HOME/landing)")
    exports_uri: str | None = Field(
        default=None, description="s3://bucket/prefix for releases and previews (default: <media_uri>/exports when "
                                  "media is in S3, beside the clips the releases point at; else HAIC_HOME/exports)")
    annotations_uri: str | None = Field(
        default=None, description="s3://bucket/prefix of HAICBench annotation batches (default: HAIC_HOME/annotations)")
    allowed_media_roots: list[str] = Field(
        default=[], description="local folders that metadata uris may point into (HAIC_HOME is always allowed)")
    s3: S3Resource = Field(description="S3 client settings, e.g. S3Resource(endpoint_url=...) for MinIO or moto; "
                                       "S3Resource() when everything is local")

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(Path(self.home))

    def s3_settings(self) -> S3Settings:
        """The S3 client settings, for this process and for child processes alike."""
        return S3Settings(endpoint_url=self.s3.endpoint_url, region_name=self.s3.region_name)

    def _store(self, uri: str | None, local: Path) -> ObjectStore:
        return open_object_store(uri or str(local), self.s3_settings().client)

    def tables(self) -> TableStore:
        return TableStore(self._store(self.tables_uri, self.layout.tables), self.layout.cache / "tables_mirror")

    def media(self) -> ObjectStore:
        return self._store(self.media_uri, self.layout.media)

    def landing(self) -> ObjectStore:
        return self._store(self.landing_uri, self.layout.landing)

    def exports(self) -> ObjectStore:
        """Releases (HAICTrain, HAICBench) and the stages' preview pictures."""
        default = f"{self.media_uri.rstrip('/')}/exports" if self.media_uri else None
        return self._store(self.exports_uri or default, self.layout.exports)

    def annotations(self) -> ObjectStore:
        """HAICBench annotation batches: annotations/<batch>/captions.jsonl, reviews.csv, qa_raw/."""
        return self._store(self.annotations_uri, self.layout.annotations)

    def allowed_roots(self) -> tuple[str, ...]:
        return (str(Path(self.home).resolve()), *(str(Path(r).resolve()) for r in self.allowed_media_roots))

    def cache_dir(self, name: str) -> Path:
        path = self.layout.cache / name
        path.mkdir(parents=True, exist_ok=True)
        return path
