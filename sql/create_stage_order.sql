-- Funnel order of the stages (filled from haic_resources.warehouse.STAGES).
CREATE OR REPLACE TABLE stage_order (stage VARCHAR, position INTEGER);
