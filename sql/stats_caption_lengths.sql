-- Words per caption (whitespace-separated tokens).
-- Inputs: captions (clip_id, caption).
SELECT
    clip_id,
    len(regexp_split_to_array(trim(caption), '\s+')) AS n_words
FROM captions
WHERE caption IS NOT NULL AND trim(caption) <> ''
ORDER BY clip_id;
