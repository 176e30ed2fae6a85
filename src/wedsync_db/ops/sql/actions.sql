-- Operator actions: signalling backends, silences and the audit (needs migration 0007).
-- Minimum server version: PostgreSQL 15.

-- name: signal_backend
-- cancel or terminate one client backend of this database and record it (ops.signal_backend)
select id, acted_at, actor, action, reason, pid, backend_user, application_name, query_excerpt,
       result
from ops.signal_backend(%(pid)s, %(action)s, %(reason)s, %(actor)s, %(wait_ms)s)

-- name: silence_check
-- silence a check until a time (replacing an earlier silence of it) and record the action
with silenced as (
    insert into ops.check_silences (check_id, reason, actor, silenced_at, until)
    values (%(check_id)s, %(reason)s, %(actor)s, now(), now() + make_interval(secs => %(seconds)s))
    on conflict (check_id) do update
        set reason = excluded.reason, actor = excluded.actor,
            silenced_at = excluded.silenced_at, until = excluded.until
    returning check_id, reason, actor, silenced_at, until
), recorded as (
    insert into ops.operator_actions (actor, action, reason, check_id, result)
    select actor, 'silence', reason, check_id, 'silenced until ' || until::text from silenced
)
select check_id, reason, actor, silenced_at, until from silenced

-- name: unsilence_check
-- lift the silence of a check (active or expired) and record the action when there was one
with lifted as (
    delete from ops.check_silences where check_id = %(check_id)s
    returning check_id, reason, actor, silenced_at, until
), recorded as (
    insert into ops.operator_actions (actor, action, reason, check_id, result)
    select %(actor)s, 'unsilence', %(reason)s, check_id,
           case when until > now() then 'lifted' else 'had expired' end
    from lifted
)
select check_id, reason, actor, silenced_at, until from lifted

-- name: active_silences
-- the silences that have not expired yet
select check_id, reason, actor, silenced_at, until
from ops.check_silences
where until > now()
order by check_id

-- name: recent_actions
-- the newest operator actions first
select id, acted_at, actor, action, reason, pid, backend_user, application_name, query_excerpt,
       check_id, result
from ops.operator_actions
order by acted_at desc, id desc
limit %(limit)s

-- name: statement_text
-- the normalised text of one statement of pg_stat_statements (query ids as inspect queries shows)
select min(query) as query
from ops.query_stats(true)
where queryid = %(queryid)s
having count(*) > 0

-- name: server_version
-- the server's major version number
select current_setting('server_version_num')::integer / 10000
