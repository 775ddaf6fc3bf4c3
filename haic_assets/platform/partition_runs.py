"""Several source shards in one run: backfills launch runs of up to N partitions.

Each per-item asset keeps a body written for one partition. In a run over a partition range,
`each_partition` calls that body once per partition with a context view whose `partition_key`
is that partition, and with that partition's input tables; the IO manager reads and writes a
`PartitionTables` mapping (partition -> table) for such runs.
"""

from numbers import Number
from typing import Any, Callable

from dagster import BackfillPolicy, MetadataValue, Output

from haic_assets.platform.settings import setting

# A backfill of many source shards runs four partitions per run: fewer pods and model loads than
# one run per shard, and a failed run costs at most four shards.
BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=setting("raw_metadata", "partitions_per_run", 4))


class PartitionTables(dict):
    """partition key -> table, for a run over several partitions of one asset."""


class PartitionScope:
    """The asset's context as seen from one partition of a multi-partition run."""

    has_partition_key = True

    def __init__(self, context, partition_key: str):
        self._context = context
        self.partition_key = partition_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def each_partition(context, body: Callable[..., Output], inputs: tuple[str, ...] = (), **arguments) -> Output:
    """Run `body(scoped_context, **arguments)` for every partition of this run.

    One partition: the body's own Output. Several: one Output holding `PartitionTables`, with the
    counts summed and each partition's own figures under `per_partition`.
    """
    keys = list(context.partition_keys)
    outputs = {}
    for key in keys:
        own = {name: (value[key] if name in inputs and isinstance(value, PartitionTables) else value)
               for name, value in arguments.items()}
        outputs[key] = body(PartitionScope(context, key) if len(keys) > 1 else context, **own)
    if len(keys) == 1:
        return outputs[keys[0]]
    return Output(PartitionTables({k: o.value for k, o in outputs.items()}),
                  metadata=merge_metadata({k: o.metadata for k, o in outputs.items()}))


def merge_metadata(by_partition: dict[str, dict]) -> dict:
    """Sum the counts over partitions; keep each partition's counts; previews from the first."""
    merged: dict[str, Any] = {"partitions": len(by_partition)}
    per_partition: dict[str, dict] = {}
    for key, metadata in by_partition.items():
        for name, value in metadata.items():
            raw = value.value if hasattr(value, "value") else value
            if isinstance(raw, Number) and not isinstance(raw, bool) and name != "yield_pct":
                merged[name] = merged.get(name, 0) + raw
                per_partition.setdefault(key, {})[name] = raw
            elif name not in merged:
                merged[name] = value
    merged.pop("yield_pct", None)
    merged["per_partition"] = MetadataValue.json(per_partition)
    return merged
