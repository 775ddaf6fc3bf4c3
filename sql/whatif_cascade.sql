-- Carry the upstream stage's new verdicts into $stage: an item whose upstream row (the same item at
-- $upstream, else its parent there) is no longer kept no longer reaches $stage ('gone'); one whose
-- upstream verdict is unknown is unknown here too.
UPDATE whatif_decided AS d
SET new_verdict = CASE WHEN u.up_verdict = 'unknown' THEN 'unknown' ELSE 'gone' END,
    new_code = NULL,
    note = CASE WHEN u.up_verdict = 'unknown' THEN 'unknown at ' || $upstream
                ELSE 'no longer reaches it: ' || $upstream || ' does not keep it' END
FROM (
    SELECT r.partition, r.item_id, coalesce(same.new_verdict, parent.new_verdict) AS up_verdict
    FROM whatif_decided AS r
    LEFT JOIN whatif_decided AS same
        ON same.stage = $upstream AND same.partition = r.partition AND same.item_id = r.item_id
    LEFT JOIN whatif_decided AS parent
        ON parent.stage = $upstream AND parent.partition = r.partition AND parent.item_id = r.parent_id
    WHERE r.stage = $stage
) AS u
WHERE d.stage = $stage AND d.partition = u.partition AND d.item_id = u.item_id
  AND u.up_verdict IS NOT NULL AND u.up_verdict <> 'kept'
