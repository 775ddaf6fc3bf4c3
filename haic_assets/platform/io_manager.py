"""One Parquet file per partition, through the storage resource (local folder or S3).

The stage factory writes a partition's tables together with its ledger rows (stage.py's
`_commit`) and marks each table it stored (`mark_stored`): this IO manager then only records
where it is. It writes what arrives unmarked. After a step's last output the DuckDB views are
refreshed, once per step: a new table (or a new partition of one) is visible in the warehouse as
soon as its step ends.
"""


import pandas as pd
from dagster import ConfigurableIOManager, Failure, InputContext, OutputContext, ResourceDependency

from haic_core.partition_keys import checked_key
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse_resource import WarehouseResource
from haic_assets.platform.partitions import UNPARTITIONED, PartitionTables


STORED_URI = "haic/stored_uri"  # in a frame's attrs: where the stage factory already stored it


def mark_stored(frame: pd.DataFrame, uri: str) -> None:
    frame.attrs[STORED_URI] = uri


def _stored_uri(frame: pd.DataFrame) -> str | None:
    return frame.attrs.get(STORED_URI) if isinstance(frame, pd.DataFrame) else None


class ParquetTablesIOManager(ConfigurableIOManager):
    storage: ResourceDependency[StorageResource]
    warehouse: ResourceDependency[WarehouseResource]

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | PartitionTables) -> None:
        if obj is None:
            return
        table = context.asset_key.path[-1]
        tables = self.storage.tables()
        if isinstance(obj, PartitionTables):  # a run over several partitions
            missing = set(context.asset_partition_keys) - set(obj)
            if missing:
                raise Failure(f"{table}: no table for partitions {sorted(missing)}")
            uris = [_stored_uri(frame) or tables.write(table, partition, frame) for partition, frame in obj.items()]
            context.add_output_metadata({"table_uris": uris})
        else:
            uri = _stored_uri(obj) or tables.write(table, _one_partition(context), obj)
            context.add_output_metadata({"table_uri": uri})
        if _is_last_output(context):
            self.warehouse.refresh(tables.local_root())

    def load_input(self, context: InputContext) -> pd.DataFrame:
        table = context.asset_key.path[-1]
        tables = self.storage.tables()
        if not context.has_asset_partitions:
            partitions = [UNPARTITIONED]
        else:
            partitions = list(context.asset_partition_keys)
        if not partitions:
            raise Failure(f"{table!r} has no partitions yet: add some (e.g. drop files into the landing or "
                          f"annotations folder) and materialize {table} first")
        frames = []
        for partition in partitions:
            try:
                checked_key(partition)
            except ValueError as exc:  # a key added by another door (the UI, GraphQL) that names no files
                raise Failure(f"input {table}: {exc}; nothing was read or written") from None
            frame = tables.read(table, partition)
            if frame is None:
                raise Failure(f"table {table!r} has no partition {partition!r} yet: materialize {table} for it first")
            frames.append(frame)
        if len(frames) > 1 and _step_runs_a_range(context):
            return PartitionTables(zip(partitions, frames))  # each partition's own table
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _one_partition(context: OutputContext) -> str:
    """The partition of a one-partition output. A backfill run over a range whose start is its end
    has no `partition_key`, only `asset_partition_keys`: it must still write that partition."""
    if not context.has_asset_partitions:
        return UNPARTITIONED
    keys = list(context.asset_partition_keys)
    if len(keys) != 1:
        raise Failure(f"{context.asset_key.to_user_string()}: one table for partitions {keys}")
    return keys[0]


def _step_runs_a_range(context: InputContext) -> bool:
    try:
        return bool(context.step_context.has_partition_key_range)
    except Exception:  # contexts built outside a run (tests, direct loads)
        return False


def _is_last_output(context: OutputContext) -> bool:
    """Stages yield their tables in declaration order, so the last table output ends the step
    (asset-check outputs come after it and are not tables)."""
    try:
        tables = [o.name for o in context.op_def.output_defs if o.io_manager_key == "tables"]
        return context.name == tables[-1]
    except Exception:  # contexts built outside a run (tests, direct writes)
        return True
