-- One caption corpus ({table}: captions for HAICTrain, bench_captions for HAICBench).
CREATE OR REPLACE TEMP VIEW captions AS
SELECT clip_id, caption FROM {table}
