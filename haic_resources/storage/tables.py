"""Per-partition Parquet tables in an object store: tables/<table>/<partition>.parquet.

Writing a partition replaces it whole, which is what makes re-runs idempotent.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from haic_resources.storage.files import atomic_write_bytes
from haic_resources.storage.object_store import LocalObjectStore, ObjectStore


class TableStore:
    def __init__(self, store: ObjectStore, mirror_dir: Path):
        self.store = store
        self.mirror_dir = Path(mirror_dir)

    @staticmethod
    def key(table: str, partition: str) -> str:
        return f"{table}/{partition}.parquet"

    def write(self, table: str, partition: str, frame: pd.DataFrame) -> str:
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, compression="zstd")
        key = self.key(table, partition)
        self.store.put_bytes(key, buffer.getvalue())
        return f"{self.store.uri}/{key}"

    def read(self, table: str, partition: str) -> pd.DataFrame | None:
        data = self.store.get_bytes(self.key(table, partition))
        if data is None:
            return None
        return pq.read_table(io.BytesIO(data)).to_pandas()

    def partitions(self, table: str) -> list[str]:
        return [k[len(table) + 1:-len(".parquet")] for k in self.store.list(f"{table}/")
                if k.endswith(".parquet") and "/" not in k[len(table) + 1:]]

    def read_all(self, table: str) -> pd.DataFrame:
        frames = [f for p in self.partitions(table) if (f := self.read(table, p)) is not None]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def local_root(self) -> Path:
        """A local folder with every table, for DuckDB. S3 tables are mirrored down first, and
        only the objects whose ETag changed since the last mirror are downloaded again."""
        if isinstance(self.store, LocalObjectStore):
            return self.store.root
        record = self.mirror_dir / ".etags.json"
        known = json.loads(record.read_text()) if record.is_file() else {}
        current = {k: v for k, v in self.store.versions("").items() if k.endswith(".parquet")}
        for key, etag in current.items():
            if known.get(key) != etag or not (self.mirror_dir / key).is_file():
                self.store.get_file(key, self.mirror_dir / key)
        for key in set(known) - set(current):  # partitions deleted upstream
            (self.mirror_dir / key).unlink(missing_ok=True)
        atomic_write_bytes(record, json.dumps(current).encode("utf-8"))
        return self.mirror_dir
