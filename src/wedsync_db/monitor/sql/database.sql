-- Server facts and database-wide counters. Minimum server version: PostgreSQL 15
-- (checkpoints_17 needs 17: pg_stat_checkpointer replaced the checkpoint columns of
-- pg_stat_bgwriter).

-- name: server_info
-- version, limits and state of the server
select pg_catalog.current_setting('server_version_num')::int as version_num,
       pg_catalog.current_setting('server_version') as version,
       pg_catalog.current_database()::text as database,
       pg_catalog.pg_postmaster_start_time() as started_at,
       pg_catalog.pg_is_in_recovery() as in_recovery,
       pg_catalog.current_setting('max_connections')::int as max_connections,
       pg_catalog.current_setting('superuser_reserved_connections')::int
           as superuser_reserved_connections,
       -- PostgreSQL 16+; absent before
       coalesce(pg_catalog.current_setting('reserved_connections', true), '0')::int
           as reserved_connections

-- name: settings
-- selected numeric settings with their units
select name, setting, unit from pg_catalog.pg_settings where name = any(%(names)s)

-- name: database_stats
-- pg_stat_database of the current database, and the cache counters of user tables
-- and indexes (read per relation from pg_class: pg_statio_user_tables costs three times more)
select d.datname::text as database,
       d.numbackends as backends,
       d.xact_commit, d.xact_rollback, d.blks_read, d.blks_hit,
       d.tup_returned, d.tup_fetched, d.tup_inserted, d.tup_updated, d.tup_deleted,
       d.conflicts, d.temp_files, d.temp_bytes, d.deadlocks, d.checksum_failures,
       d.checksum_last_failure,
       d.blk_read_time as blk_read_time_ms, d.blk_write_time as blk_write_time_ms,
       d.sessions, d.sessions_abandoned, d.sessions_fatal, d.sessions_killed,
       d.session_time as session_time_ms, d.active_time as active_time_ms,
       d.idle_in_transaction_time as idle_in_transaction_time_ms,
       d.stats_reset,
       -- PostgreSQL 18+ (NULL before): read through jsonb so older servers need no variant
       (pg_catalog.to_jsonb(d) ->> 'parallel_workers_to_launch')::bigint
           as parallel_workers_to_launch,
       (pg_catalog.to_jsonb(d) ->> 'parallel_workers_launched')::bigint
           as parallel_workers_launched,
       -- recovery conflicts by reason (confl_active_logicalslot is 16+)
       (select pg_catalog.jsonb_object_agg(pg_catalog.substr(k.key, 7), k.value::bigint)
        from pg_catalog.pg_stat_database_conflicts c
        cross join lateral pg_catalog.jsonb_each_text(pg_catalog.to_jsonb(c)) k
        where c.datid = d.datid and pg_catalog.left(k.key, 6) = 'confl_') as conflicts_by_reason,
       coalesce(t.heap_hit, 0) as heap_blks_hit, coalesce(t.heap_read, 0) as heap_blks_read,
       coalesce(t.idx_hit, 0) as idx_blks_hit, coalesce(t.idx_read, 0) as idx_blks_read
from pg_catalog.pg_stat_database d
cross join (
    select sum(b.hit) filter (where b.relkind <> 'i')::bigint as heap_hit,
           sum(b.fetched - b.hit) filter (where b.relkind <> 'i')::bigint as heap_read,
           sum(b.hit) filter (where b.relkind = 'i')::bigint as idx_hit,
           sum(b.fetched - b.hit) filter (where b.relkind = 'i')::bigint as idx_read
    from (
        select c.relkind,
               pg_catalog.pg_stat_get_blocks_hit(c.oid) as hit,
               pg_catalog.pg_stat_get_blocks_fetched(c.oid) as fetched
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'm', 'i')
          and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname !~ '^pg_toast'
    ) b
) t
where d.datname = pg_catalog.current_database()

-- name: xid_ages
-- transaction-ID and multixact age of every database (wraparound is a per-database limit)
select datname::text as database,
       pg_catalog.age(datfrozenxid) as xid_age,
       pg_catalog.mxid_age(datminmxid) as mxid_age
from pg_catalog.pg_database
order by 2 desc

-- name: checkpoints_15
-- checkpoint and background writer counters (PostgreSQL 15 and 16)
select b.checkpoints_timed, b.checkpoints_req as checkpoints_requested,
       b.checkpoint_write_time as checkpoint_write_time_ms,
       b.checkpoint_sync_time as checkpoint_sync_time_ms,
       b.buffers_checkpoint, b.buffers_clean, b.maxwritten_clean, b.buffers_alloc,
       b.buffers_backend, b.buffers_backend_fsync
from pg_catalog.pg_stat_bgwriter b

-- name: checkpoints_17
-- the same counters from pg_stat_checkpointer (PostgreSQL 17 and later)
select c.num_timed as checkpoints_timed, c.num_requested as checkpoints_requested,
       c.write_time as checkpoint_write_time_ms, c.sync_time as checkpoint_sync_time_ms,
       c.buffers_written as buffers_checkpoint,
       b.buffers_clean, b.maxwritten_clean, b.buffers_alloc,
       null::bigint as buffers_backend, null::bigint as buffers_backend_fsync
from pg_catalog.pg_stat_checkpointer c
cross join pg_catalog.pg_stat_bgwriter b

-- name: wal_and_archiver
-- WAL and archiver counters (every supported version)
select w.wal_records, w.wal_fpi, w.wal_bytes::bigint as wal_bytes, w.wal_buffers_full,
       a.archived_count, a.failed_count,
       extract(epoch from pg_catalog.clock_timestamp() - a.last_archived_time)::float8
           as last_archived_age_seconds
from pg_catalog.pg_stat_wal w
cross join pg_catalog.pg_stat_archiver a

-- name: weddings_today
-- weddings on a platform-local date (the calendar context of the assessment)
select count(*)::int from public.weddings where wedding_date = %s and status <> 'cancelled'

-- name: become_service_role
-- read tenant tables as service_role (BYPASSRLS), whatever login the monitor uses
select pg_catalog.set_config('role', 'service_role', true)

-- name: reset_role
-- back to the login role for the rest of the transaction
select pg_catalog.set_config('role', 'none', true)

-- name: set_timeouts
-- the statement and lock timeouts of the next collector (local to the transaction)
select pg_catalog.set_config('statement_timeout', %s, true),
       pg_catalog.set_config('lock_timeout', %s, true)
