-- Queries of the migration runner. Minimum server version: PostgreSQL 15.

-- name: bootstrap
-- the ops schema, migration history and audit table, created before any migration runs
create schema if not exists ops;
revoke all on schema ops from public;
create table if not exists ops.schema_migrations (
    version text primary key,
    name text not null,
    directory text not null,
    checksum text not null check (checksum ~ '^[0-9a-f]{64}$'),
    applied_at timestamptz not null default now(),
    applied_by text not null,
    duration_ms double precision not null,
    mode text not null check (mode in ('transactional', 'no-transaction')),
    attempts integer not null default 1
);
create table if not exists ops.audit_events (
    id bigint generated always as identity primary key,
    occurred_at timestamptz not null default now(),
    actor text not null,
    action text not null,
    outcome text not null,
    reason text,
    details jsonb not null default '{}'::jsonb
);
create index if not exists audit_events_occurred_at_idx on ops.audit_events (occurred_at);

-- name: history_exists
-- whether ops.schema_migrations exists yet (read-only status must not create it)
select to_regclass('ops.schema_migrations') is not null

-- name: applied
-- every applied migration, oldest first
select version, name, directory, checksum, applied_at, applied_by, duration_ms, mode
from ops.schema_migrations
order by version

-- name: record_applied
-- one successful file
insert into ops.schema_migrations
    (version, name, directory, checksum, applied_by, duration_ms, mode, attempts)
values (%(version)s, %(name)s, %(directory)s, %(checksum)s, %(applied_by)s, %(duration_ms)s,
        %(mode)s, %(attempts)s)

-- name: repair_checksum
-- record a reviewed file's new checksum
update ops.schema_migrations set checksum = %(checksum)s where version = %(version)s

-- name: forget_missing
-- drop the history row of a reviewed, deliberately removed file
delete from ops.schema_migrations where version = %(version)s

-- name: record_audit
-- an audit event (runs, refusals, overrides, repairs)
insert into ops.audit_events (actor, action, outcome, reason, details)
values (%(actor)s, %(action)s, %(outcome)s, %(reason)s, %(details)s)
returning id

-- name: set_timeouts
-- lock_timeout and statement_timeout for one file (local to its transaction, or the session)
select set_config('lock_timeout', %(lock)s, %(local)s),
       set_config('statement_timeout', %(statement)s, %(local)s)

-- name: reset_timeouts
-- back to the session defaults after a non-transactional file
reset lock_timeout; reset statement_timeout

-- name: set_lock_wait
-- bound the wait for the advisory lock (session level, reset afterwards)
select set_config('lock_timeout', %s, false)

-- name: reset_lock_wait
-- the session's lock_timeout back to its default once the lock question is settled
reset lock_timeout

-- name: advisory_lock
-- the session-level lock that serialises migration runs
select pg_advisory_lock(%s)

-- name: advisory_unlock
-- release the run lock
select pg_advisory_unlock(%s)

-- name: lock_holder
-- who holds the migration lock (for the error message)
select a.pid, a.application_name, a.client_addr::text as client_addr,
       extract(epoch from now() - a.backend_start)::float8 as connected_seconds
from pg_locks l join pg_stat_activity a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted
  and l.database = (select oid from pg_database where datname = current_database())
  and l.classid = (%(key)s::bigint >> 32)::oid and l.objid = (%(key)s::bigint & 4294967295)::oid
limit 1

-- name: invalid_index
-- an index left INVALID by a failed concurrent build
select n.nspname as schema, c.relname as name
from pg_index i
join pg_class c on c.oid = i.indexrelid
join pg_namespace n on n.oid = c.relnamespace
where not i.indisvalid and c.relname = %(name)s
  and (%(schema)s::text is null or n.nspname = %(schema)s)

-- name: weddings_table_exists
-- the freeze policy counts weddings only once the core schema exists
select to_regclass('public.weddings') is not null

-- name: server_version_num
-- the server's version, for version-aware lint rules
select current_setting('server_version_num')::int

-- name: weddings_on
-- weddings scheduled on a platform-local date (the freeze policy's input)
select count(*)::int from weddings where wedding_date = %s and status <> 'cancelled'

-- name: weddings_between
-- weddings per day in a date range (for the next allowed time)
select wedding_date, count(*)::int as weddings
from weddings
where wedding_date between %s and %s and status <> 'cancelled'
group by wedding_date

-- name: hardening_exists
-- whether ops.harden_database() exists yet (migration 0005)
select to_regprocedure('ops.harden_database()') is not null

-- name: harden_database
-- re-apply the database-level revocations (not copied by CREATE DATABASE … TEMPLATE)
select step, outcome, detail from ops.harden_database()

-- name: watch_the_client
-- the lock session ends soon after its client dies (kill -9) even mid-statement, releasing the lock
select set_config('client_connection_check_interval', '1000', false)
