"""The warehouse as a Dagster resource: the DuckDB file of views and aggregate tables that steps
refresh (haic_resources/storage/warehouse.py holds what it does, without Dagster, for the CLI)."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from haic_resources.storage.warehouse import WarehouseBusy, refresh_warehouse, write_aside

log = logging.getLogger(__name__)


class WarehouseResource(ConfigurableResource):
    """The DuckDB file that holds the views and aggregate tables (HAIC_HOME/warehouse.duckdb)."""

    database: str = Field(description="path of the DuckDB database file")
    stage_order: list[str] = Field(default=[], description="the stages in pipeline order (haic_assets.stages)")

    def refresh(self, tables_root: Path) -> list[str]:
        """Rebuild the views. The warehouse is a convenience over the Parquet files: a refresh
        that cannot happen is logged, and never fails the step whose tables are already written."""
        try:
            return refresh_warehouse(Path(self.database), tables_root, self.stage_order)
        except (WarehouseBusy, duckdb.IOException) as exc:
            log.warning("warehouse %s not refreshed (%s); the next step's refresh will include these tables",
                        self.database, exc)
            return []

    def connect(self):
        """A writable connection (e.g. statistics tables); its changes are swapped in when it closes."""
        return write_aside(Path(self.database))
