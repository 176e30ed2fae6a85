-- Heavyweight locks and blocking chains. Minimum server version: PostgreSQL 15
-- (pg_locks.waitstart is 14+); needs migration 0004 (ops.connection_audience).

-- name: lock_modes
-- locks of the whole server per mode, granted and waiting
select mode,
       (count(*) filter (where granted))::int as granted,
       (count(*) filter (where not granted))::int as waiting
from pg_catalog.pg_locks
group by mode

-- name: blocking
-- who waits for whom: one row per (waiting session, session holding the lock), longest first
select w.pid as blocked_pid,
       ops.connection_audience(w.application_name) as blocked_audience,
       left(coalesce(w.query, ''), %(query_chars)s) as blocked_query,
       greatest(extract(epoch from pg_catalog.clock_timestamp()
                        - coalesce(l.waitstart, w.query_start)), 0)::float8 as wait_seconds,
       l.locktype as lock_type,
       l.mode,
       case when l.relation is not null then l.relation::pg_catalog.regclass::text end
           as relation,
       b.pid as blocking_pid,
       ops.connection_audience(b.application_name) as blocking_audience,
       coalesce(b.state, 'unknown') as blocking_state,
       left(coalesce(b.query, ''), %(query_chars)s) as blocking_query,
       extract(epoch from pg_catalog.clock_timestamp() - b.xact_start)::float8
           as blocking_transaction_seconds
from pg_catalog.pg_stat_activity w
cross join lateral pg_catalog.unnest(pg_catalog.pg_blocking_pids(w.pid)) as bp(pid)
join pg_catalog.pg_stat_activity b on b.pid = bp.pid
left join lateral (
    select x.locktype, x.mode, x.relation, x.waitstart
    from pg_catalog.pg_locks x
    where x.pid = w.pid and not x.granted
    limit 1
) l on true
where w.wait_event_type = 'Lock'
order by wait_seconds desc, blocked_pid, blocking_pid
limit %(limit)s
