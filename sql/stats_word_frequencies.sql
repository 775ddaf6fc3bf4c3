-- Most frequent caption words, stop-words removed (the word cloud's input).
-- Inputs: captions (clip_id, caption); stop_words (word); parameters $top_n, $min_word_length.
WITH words AS (
    SELECT unnest(regexp_extract_all(lower(caption), '[a-z]+(?:''[a-z]+)?')) AS word
    FROM captions
    WHERE caption IS NOT NULL
)
SELECT word, count(*) AS n
FROM words
WHERE length(word) >= $min_word_length
  AND word NOT IN (SELECT word FROM stop_words)
GROUP BY word
ORDER BY n DESC, word
LIMIT $top_n;
