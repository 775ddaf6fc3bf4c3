-- whatif_stage_rows(stage): the whatif_ledger rows of one stage, as each sql/whatif_<stage>.sql reads
-- them, with `unsettled`: the outcome of a row whose stored run gave no verdict (an error, pending),
-- which no setting can settle; NULL for a kept or dropped row.
CREATE OR REPLACE TEMP MACRO whatif_stage_rows(of_stage) AS TABLE
    SELECT
        *,
        CASE WHEN verdict NOT IN ('kept', 'dropped')
             THEN 'unknown:the stored run has no verdict (' || verdict || ')' END AS unsettled
    FROM whatif_ledger
    WHERE stage = of_stage
