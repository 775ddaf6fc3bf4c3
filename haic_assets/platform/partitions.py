"""Source-shard partitions: one partition per metadata file of one source, added by a sensor."""

from dagster import DynamicPartitionsDefinition

source_shards = DynamicPartitionsDefinition(name="source_shards")

# Batches of human annotations for HAICBench arrive like source shards.
annotation_batches = DynamicPartitionsDefinition(name="annotation_batches")
