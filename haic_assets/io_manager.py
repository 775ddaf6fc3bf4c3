"""One Parquet file per partition, through the storage resource (local folder or S3)."""


import pandas as pd
from dagster import ConfigurableIOManager, Failure, InputContext, OutputContext, ResourceDependency

from haic_resources.storage import StorageResource

UNPARTITIONED = "all"


class ParquetTablesIOManager(ConfigurableIOManager):
    storage: ResourceDependency[StorageResource]

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        table = context.asset_key.path[-1]
        partition = context.partition_key if context.has_partition_key else UNPARTITIONED
        uri = self.storage.tables().write(table, partition, obj)
        context.add_output_metadata({"table_uri": uri})

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
            frame = tables.read(table, partition)
            if frame is None:
                raise Failure(f"table {table!r} has no partition {partition!r} yet: materialize {table} for it first")
            frames.append(frame)
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
