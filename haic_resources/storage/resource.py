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
from haic_resources.storage.tables import TableStore, table_store
from haic_resources.video.fetch_policy import DEFAULT_CONTENT_TYPES, FetchPolicy


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
        default=[], description="local folders that metadata uris may point into (besides the media store; the rest "
                                  "of HAIC_HOME is not)")
    fetch_allow_hosts: list[str] = Field(default=[], description="http(s) hosts metadata uris may name (and their "
                                                               "subdomains); empty: any public host")
    fetch_deny_hosts: list[str] = Field(default=[], description="http(s) hosts never fetched")
    fetch_open_networks: list[str] = Field(
        default=[], description="CIDRs whose private/loopback addresses may be fetched (denied by default)")
    fetch_content_types: list[str] = Field(default=list(DEFAULT_CONTENT_TYPES),
                                           description="accepted Content-Types ('video/' matches every video type)")
    fetch_s3_buckets: list[str] | None = Field(
        default=None, description="buckets s3:// metadata uris may name; empty: the buckets of media and landing")
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
        return table_store(self.layout, self.tables_uri, self.s3_settings())

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
        """Where local media rows may point: the deployment's roots and this home's media store, never the rest
        of HAIC_HOME (its landing zone, settings, Dagster storage, caches and tables are no media)."""
        return (str(self.layout.media.resolve()), *(str(Path(r).resolve()) for r in self.allowed_media_roots))

    def fetch_policy(self) -> FetchPolicy:
        """What metadata uris may make a worker fetch (hosts, addresses, body types, buckets)."""
        buckets = self.fetch_s3_buckets
        if buckets is None:
            buckets = [u.removeprefix("s3://").split("/", 1)[0] for u in (self.media_uri, self.landing_uri)
                       if u and u.startswith("s3://")]
        return FetchPolicy(allow_hosts=tuple(self.fetch_allow_hosts), deny_hosts=tuple(self.fetch_deny_hosts),
                           open_networks=tuple(self.fetch_open_networks),
                           content_types=tuple(self.fetch_content_types), s3_buckets=tuple(buckets))

    def cache_dir(self, name: str) -> Path:
        path = self.layout.cache / name
        path.mkdir(parents=True, exist_ok=True)
        return path
