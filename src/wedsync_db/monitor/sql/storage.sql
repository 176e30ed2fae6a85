-- Table and index sizes. Minimum server version: PostgreSQL 15.

-- name: database_size
-- the database on disk (walks every file of it: collected with the sample, not per scrape)
select pg_catalog.pg_database_size(pg_catalog.current_database())

-- name: table_sizes
-- the largest tables, with the totals over every user table on each row
with sizes as (
    select n.nspname::text as schema_name,
           c.relname::text as table_name,
           pg_catalog.pg_total_relation_size(c.oid) as total_bytes,
           pg_catalog.pg_relation_size(c.oid) as table_bytes,
           pg_catalog.pg_indexes_size(c.oid) as index_bytes,
           coalesce(pg_catalog.pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)
               as toast_bytes,
           greatest(c.reltuples, 0)::bigint as estimated_rows
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'm')
      and c.relpersistence <> 't'
      and n.nspname not in ('pg_catalog', 'information_schema')
      and n.nspname !~ '^pg_toast'
)
select s.*,
       (count(*) over ())::int as table_count,
       (sum(s.table_bytes + s.toast_bytes) over ())::bigint as tables_bytes,
       (sum(s.index_bytes) over ())::bigint as indexes_bytes
from sizes s
order by s.total_bytes desc, s.schema_name, s.table_name
limit %(limit)s
