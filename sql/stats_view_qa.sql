-- One QA table ({table}: qa_pairs, qa_verified or haicbench_split).
CREATE OR REPLACE TEMP VIEW qa AS
SELECT qa_id, clip_id, category FROM {table}
