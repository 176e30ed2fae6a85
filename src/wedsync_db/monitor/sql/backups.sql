-- Backups: the WAL archiver and what the backup commands recorded. Minimum server version:
-- PostgreSQL 15.

-- name: archiving
-- whether WAL is archived (and how well), and whether the monitoring login could take a
-- physical backup (a managed database's login can do neither)
select current_setting('archive_mode') <> 'off'
           and (current_setting('archive_library') <> ''
                or current_setting('archive_command') not in ('', '(disabled)'))
           as archiving,
       coalesce((select rolsuper or rolreplication from pg_catalog.pg_roles
                 where rolname = session_user), false) as can_replicate,
       a.archived_count, a.failed_count, a.last_archived_time, a.last_failed_time,
       to_regclass('ops.backup_events') is not null as events_recorded
from pg_catalog.pg_stat_archiver a

-- name: events
-- the newest good backup and verification, the newest failures, and the totals
select (select max(finished_at) from ops.backup_events
        where action = 'backup' and status = 'ok') as last_backup_at,
       (select max(finished_at) from ops.backup_events
        where action = 'backup' and status = 'failed') as last_backup_failed_at,
       (select max(finished_at) from ops.backup_events
        where action = 'verify' and status = 'ok') as last_verified_at,
       (select max(finished_at) from ops.backup_events
        where action = 'verify' and status = 'failed') as last_verify_failed_at,
       (select kind from ops.backup_events where action = 'verify' and status = 'ok'
        order by finished_at desc limit 1) as last_verified_kind,
       (select rpo_seconds from ops.backup_events where action = 'verify' and status = 'ok'
        order by finished_at desc limit 1) as last_verified_rpo_seconds,
       (select (details ->> 'size_bytes')::bigint from ops.backup_events
        where action = 'backup' and status = 'ok'
        order by finished_at desc limit 1) as last_backup_bytes,
       count(*) filter (where action = 'backup' and status = 'ok') as backups_ok,
       count(*) filter (where action = 'backup' and status = 'failed') as backups_failed,
       count(*) filter (where action = 'verify' and status = 'ok') as verifications_ok,
       count(*) filter (where action = 'verify' and status = 'failed') as verifications_failed
from ops.backup_events

-- name: recent_events
-- the newest backups and verifications, newest first
select backup_id, action, status, kind, started_at, finished_at, actor, rpo_seconds,
       extract(epoch from finished_at - started_at)::float8 as duration_s,
       details ->> 'problems' as problems
from ops.backup_events
order by finished_at desc, id desc
limit %(limit)s
