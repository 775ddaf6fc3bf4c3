-- Keep one statistics frame (registered as stats_frame) as a table of the warehouse file.
CREATE OR REPLACE TABLE {table} AS SELECT * FROM stats_frame
