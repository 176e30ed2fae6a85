-- Backups and their verifications, recorded for health, metrics and history (the files and
-- their metadata live in the backup repository; this is what the database is told of them).

create table ops.backup_events (
    id bigint generated always as identity primary key,
    backup_id text not null,
    action text not null check (action in ('backup', 'verify')),
    status text not null check (status in ('ok', 'failed')),
    kind text not null check (kind in ('full', 'incremental', 'logical')),
    started_at timestamptz not null,
    finished_at timestamptz not null,
    actor text not null,
    -- the data a failure at finished_at could have lost: seconds since the newest archived WAL
    rpo_seconds double precision,
    details jsonb not null default '{}'::jsonb
);
-- health reads the latest good verification, history reads ranges of time
create index backup_events_action_finished_idx on ops.backup_events (action, status, finished_at);

grant select on ops.backup_events to service_role;
