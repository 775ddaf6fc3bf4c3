"""landing_file: the metadata shard files as they land, one partition per shard.

An external asset: the platform never writes these files, data providers do. The landing sensor
reports an observation of a shard each time it sees a complete new version of it (the data
version is the file's sha256, or its S3 ETag and size), so the UI shows when every shard arrived
and changed, and raw_metadata, which reads them, shows them upstream in the lineage.
"""

from dagster import AssetKey, AssetSpec

from haic_assets.platform.partitions import source_shards

LANDING_FILE = AssetKey("landing_file")

landing_file = AssetSpec(
    LANDING_FILE, partitions_def=source_shards, group_name="accumulation", kinds={"file"},
    owners=["team:haic-curation"],
    description="A metadata shard in landing/<source>/ (a folder under HAIC_HOME, or HAIC_LANDING_URI in S3). "
                "Observed by the landing sensor: its data version is the file's sha256 (S3: ETag and size).")
