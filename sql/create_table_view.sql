-- One view per Parquet table: every partition file under tables/<table>/.
-- {view} and {files} are filled by haic_resources.warehouse (DDL takes no bound parameters).
CREATE OR REPLACE VIEW {view} AS
SELECT * FROM read_parquet({files}, union_by_name = true);
