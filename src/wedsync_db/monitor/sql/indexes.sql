-- Index advice through ops.index_recommendations(). Minimum server version: PostgreSQL 15;
-- needs migration 0004.

-- name: index_recommendations
-- invalid, unused, duplicate and missing indexes and unindexed foreign keys
select kind, schema_name, table_name, index_name, detail, remedy, size_bytes
from ops.index_recommendations(%(min_table_rows)s, %(min_unused_bytes)s)
