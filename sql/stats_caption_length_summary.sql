-- Caption length summary; the paper notes captions are often over 100 words.
-- Inputs: captions (clip_id, caption); parameter $long_caption_words.
WITH lengths AS (
    SELECT len(regexp_split_to_array(trim(caption), '\s+')) AS n_words
    FROM captions
    WHERE caption IS NOT NULL AND trim(caption) <> ''
)
SELECT
    count(*) AS n_captions,
    round(avg(n_words), 1) AS mean_words,
    median(n_words) AS median_words,
    min(n_words) AS min_words,
    max(n_words) AS max_words,
    round(100.0 * count(*) FILTER (WHERE n_words > $long_caption_words) / nullif(count(*), 0), 1) AS pct_over_long
FROM lengths;
