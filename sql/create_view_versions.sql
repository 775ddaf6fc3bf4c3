-- Which SQL each aggregate view was made from (sha256 of its sql/ file): a warehouse file outlives
-- upgrades, and a view whose file changed is made again.
CREATE TABLE IF NOT EXISTS warehouse_view_versions (view VARCHAR PRIMARY KEY, sql_sha256 VARCHAR);
