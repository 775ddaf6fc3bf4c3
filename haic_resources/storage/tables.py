"""Per-partition Parquet tables in an object store: tables/<table>/<partition>.parquet.

Writing a partition replaces it whole, which is what makes re-runs idempotent. Files that must
change together (a stage's table and its ledger rows) are written with `write_together`: readers
see all of the new files or none of them.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from haic_core.partition_keys import checked_key
from haic_resources.storage.files import TEMP_PREFIX, atomic_write_bytes
from haic_resources.storage.object_store import LocalObjectStore, ObjectStore, open_object_store

if TYPE_CHECKING:  # pandas is imported where a frame is made: `haic why` and `haic funnel` start without it
    import pandas as pd


class TableStore:
    def __init__(self, store: ObjectStore, mirror_dir: Path):
        self.store = store
        self.mirror_dir = Path(mirror_dir)

    @staticmethod
    def key(table: str, partition: str) -> str:
        """The object key of a table's partition; a partition that is no single safe name (e.g. one
        with '/' or '..' in it) is refused here, whichever step or command built it."""
        return f"{table}/{checked_key(partition)}.parquet"

    def write(self, table: str, partition: str, frame: pd.DataFrame) -> str:
        key = self.key(table, partition)
        self.store.put_bytes(key, _parquet_bytes(frame))
        return f"{self.store.uri}/{key}"

    def write_together(self, name: str, frames: Mapping[tuple[str, str], pd.DataFrame]) -> dict[tuple[str, str], str]:
        """Write (table, partition) -> frame so that all of them change or none does.

        1. every new file is written beside its target under a temporary name (listings and the
           warehouse's globs pass over these): a full disk or a read-only folder fails here, and
           the temporary files are removed, with nothing visible changed;
        2. a journal `.commits/<name>.json` lists the renames still to do;
        3. each temporary file is renamed onto its target, then the journal is removed.
        A crash between 2 and 3 leaves the journal: `recover(name)`, called by the next writer of
        the same files before it writes, finishes the renames. `name` must be unique to the writer
        (the stage factory uses '<stage>__<partition>', which its partition lock guards).
        Returns (table, partition) -> the stored file's URI.
        """
        targets = {pair: self.key(*pair) for pair in frames}
        staged: dict[str, str] = {}
        try:
            for pair, frame in frames.items():
                temporary = f"{targets[pair].rsplit('/', 1)[0]}/{TEMP_PREFIX}{uuid.uuid4().hex}"
                self.store.put_bytes(temporary, _parquet_bytes(frame))
                staged[temporary] = targets[pair]
            self.store.put_bytes(_journal(name), json.dumps(staged).encode("utf-8"))
        except BaseException:
            for temporary in staged:
                _forget(self.store, temporary)
            raise
        self.recover(name)
        return {pair: f"{self.store.uri}/{key}" for pair, key in targets.items()}

    def recover(self, name: str) -> int:
        """Finish the renames of an interrupted `write_together(name, ...)`; how many it made."""
        journal = self.store.get_bytes(_journal(name))
        if journal is None:
            return 0
        moved = 0
        for temporary, target in json.loads(journal).items():
            if self.store.exists(temporary):
                self.store.move(temporary, target)
                moved += 1
        self.store.delete(_journal(name))
        return moved

    def read(self, table: str, partition: str) -> pd.DataFrame | None:
        data = self.store.get_bytes(self.key(table, partition))
        if data is None:
            return None
        return pq.read_table(io.BytesIO(data)).to_pandas()

    def partitions(self, table: str) -> list[str]:
        return [k[len(table) + 1:-len(".parquet")] for k in self.store.list(f"{table}/")
                if k.endswith(".parquet") and "/" not in k[len(table) + 1:]]

    def read_all(self, table: str) -> pd.DataFrame:
        import pandas as pd

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


JOURNALS = ".commits"  # tables/.commits/<writer>.json: renames of a write_together still to finish


def _journal(name: str) -> str:
    return f"{JOURNALS}/{checked_key(name, 'writer name')}.json"


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, compression="zstd")
    return buffer.getvalue()


def _forget(store: ObjectStore, key: str) -> None:
    """Remove a temporary file of a write that failed; a store that refuses (read-only, full) keeps it,
    under a name no reader lists."""
    try:
        store.delete(key)
    except Exception:  # noqa: BLE001 - the write's own error is the one to report
        pass


def table_store(layout, tables_uri: str | None, s3) -> TableStore:
    """A home's tables: its tables/ folder, or `tables_uri` in S3 mirrored under cache/ for DuckDB.
    `layout` is the home's HomeLayout, `s3` its S3Settings."""
    return TableStore(open_object_store(tables_uri or str(layout.tables), s3.client), layout.cache / "tables_mirror")
