-- The predictions of one what-if: per stage and item, the stored and the predicted decision.
-- new_verdict: kept, dropped, error, pending, gone (no longer reaches the stage), unknown.
CREATE OR REPLACE TEMP TABLE whatif_decided (
    stage VARCHAR, partition VARCHAR, source VARCHAR, item_id VARCHAR, parent_id VARCHAR, item_kind VARCHAR,
    old_verdict VARCHAR, old_code VARCHAR, old_metric VARCHAR, old_value DOUBLE, old_threshold DOUBLE,
    new_verdict VARCHAR, new_code VARCHAR, new_metric VARCHAR, new_value DOUBLE, new_threshold DOUBLE,
    note VARCHAR
)
