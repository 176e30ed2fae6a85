-- Statement statistics from pg_stat_statements through ops.query_stats(), which normalises the
-- column names of PostgreSQL 15 to 18. Minimum server version: PostgreSQL 15 (pg_stat_statements
-- 1.9+ for pg_stat_statements_info); needs migration 0004.

-- name: query_counters
-- cumulative counters of every statement of this database (no texts: cheap)
select queryid, userid, toplevel, calls, total_exec_ms as total_ms, rows, shared_blks_hit,
       shared_blks_read, temp_blks_written
from ops.query_stats(false)

-- name: query_texts
-- the texts of a few statements (reads the texts file once)
select queryid, left(min(query), %(query_chars)s) as query
from ops.query_stats(true)
where queryid = any(%(queryids)s::bigint[])
group by queryid

-- name: statements_extension
-- where pg_stat_statements is installed
select n.nspname::text as schema_name, e.extversion
from pg_catalog.pg_extension e
join pg_catalog.pg_namespace n on n.oid = e.extnamespace
where e.extname = 'pg_stat_statements'

-- name: statements_info
-- evictions and the last reset of the whole view; {schema} is the extension's schema
select dealloc, stats_reset from {schema}.pg_stat_statements_info

-- name: performance_report
-- top statements since the last reset, flagged when slower than the wedding-day limit
select queryid, calls, total_ms, mean_ms, rows, share_of_total, cache_hit_ratio,
       wedding_day_risk, query
from ops.performance_report(%(latency_ms)s, %(top_n)s)
