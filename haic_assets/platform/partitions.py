"""The partitions: one per metadata shard of a source, one per HAICBench annotation batch.

Both are dynamic: sensors add a partition when its file arrives (platform/sensors.py,
haicbench/sensors.py); the CLI, the UI's "Add partition" dialog and the GraphQL API can add
keys too, so every stage checks its keys (`checked_partition_key`) before it writes anything.
"""

from dagster import DynamicPartitionsDefinition

from haic_core.partition_keys import checked_key
from haic_resources.storage.landing import shard_of_partition

source_shards = DynamicPartitionsDefinition(name="source_shards")
annotation_batches = DynamicPartitionsDefinition(name="annotation_batches")

# The partition name under which unpartitioned assets (the split, the statistics) store their
# table and ledger rows.
UNPARTITIONED = "all"


def checked_partition_key(partitions_name: str | None, key: str) -> str:
    """`key` when it may name stored files of a partition of `partitions_name` (ValueError saying
    why not): a source shard's key must name a valid landing file, and every key must be one
    safe path segment (haic_core/partition_keys.py)."""
    if partitions_name == source_shards.name:
        shard_of_partition(key)
    return checked_key(key, f"{partitions_name or 'partition'} key")


class PartitionTables(dict):
    """partition key -> table, for a run over several partitions of one asset (a backfill
    launches runs of up to `platform.partitions_per_run` partitions)."""
