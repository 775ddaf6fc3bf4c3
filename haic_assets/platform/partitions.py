"""The partitions: one per metadata shard of a source, one per HAICBench annotation batch.

Both are dynamic: sensors add a partition when its file arrives (platform/sensors.py,
haicbench/sensors.py).
"""

from dagster import DynamicPartitionsDefinition

source_shards = DynamicPartitionsDefinition(name="source_shards")
annotation_batches = DynamicPartitionsDefinition(name="annotation_batches")

# The partition name under which unpartitioned assets (the split, the statistics) store their
# table and ledger rows.
UNPARTITIONED = "all"


class PartitionTables(dict):
    """partition key -> table, for a run over several partitions of one asset (a backfill
    launches runs of up to `platform.partitions_per_run` partitions)."""
