-- Index advice through ops.index_recommendations(). Minimum server version: PostgreSQL 15;
-- needs migration 0004.

-- name: index_recommendations
-- invalid, unused, duplicate and missing indexes and unindexed foreign keys; a table is judged
-- for a missing index only once it has been read sequentially min_seq_scans times (a freshly
-- loaded table has a handful of scans, which say nothing about its queries)
select r.kind, r.schema_name, r.table_name, r.index_name, r.detail, r.remedy, r.size_bytes
from ops.index_recommendations(%(min_table_rows)s, %(min_unused_bytes)s) r
left join pg_catalog.pg_stat_user_tables t
    on r.kind = 'missing' and t.schemaname = r.schema_name and t.relname = r.table_name
where r.kind <> 'missing' or t.seq_scan >= %(min_seq_scans)s
