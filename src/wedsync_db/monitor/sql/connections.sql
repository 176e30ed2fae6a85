-- Client connections. Minimum server version: PostgreSQL 15; needs migration 0004 (ops.*).

-- name: connection_stats
-- client connections of the server by audience and state
select audience, state, connections, waiting_on_locks, longest_transaction_seconds,
       longest_query_seconds
from ops.connection_stats()

-- name: activity
-- long-running statements and idle open transactions, longest first (not this session)
select a.pid,
       ops.connection_audience(a.application_name) as audience,
       coalesce(a.application_name, '') as application_name,
       a.usename::text as username,
       coalesce(a.state, 'unknown') as state,
       a.wait_event_type, a.wait_event,
       greatest(extract(epoch from pg_catalog.clock_timestamp()
                        - case when a.state = 'active' then a.query_start
                               else a.state_change end), 0)::float8 as seconds,
       extract(epoch from pg_catalog.clock_timestamp() - a.xact_start)::float8
           as transaction_seconds,
       left(coalesce(a.query, ''), %(query_chars)s) as query
from pg_catalog.pg_stat_activity a
where a.backend_type = 'client backend'
  and a.pid <> pg_catalog.pg_backend_pid()
  and a.state in ('active', 'idle in transaction', 'idle in transaction (aborted)')
  and pg_catalog.clock_timestamp()
      - case when a.state = 'active' then a.query_start else a.state_change end
      >= pg_catalog.make_interval(secs => %(min_seconds)s)
order by seconds desc
limit %(limit)s
