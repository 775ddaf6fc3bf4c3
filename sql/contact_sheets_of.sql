-- The contact sheets of the given items (a `haic why` trail), newest layout: one per stage and item.
-- $1: a list of item ids.
SELECT stage, item_id, uri
FROM contact_sheets
WHERE list_contains($1, item_id)
ORDER BY item_id, stage
