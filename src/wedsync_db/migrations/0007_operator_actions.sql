-- Operator actions: cancelling or terminating a backend with a stated reason, recorded with what
-- the backend was doing at that moment, and silences that keep a known check from driving the
-- overall health status until they expire. PostgreSQL 15 or later.

-- One row per action an operator took; rows are only ever added.
create table ops.operator_actions (
    id bigint generated always as identity primary key,
    acted_at timestamptz not null default now(),
    actor text not null,
    action text not null check (action in ('cancel', 'terminate', 'silence', 'unsilence')),
    reason text not null check (btrim(reason) <> ''),
    -- what the action was done to: the backend of cancel / terminate, the check of a silence
    pid integer,
    backend_user text,
    application_name text,
    query_excerpt text,
    check_id text,
    result text not null,
    check (action in ('silence', 'unsilence') or pid is not null),
    check (action in ('cancel', 'terminate') or check_id is not null)
);
-- the audit is read newest first
create index operator_actions_acted_at_idx on ops.operator_actions (acted_at);

-- A check that does not drive the overall health status until `until`; expired rows are
-- ignored by every reader and replaced by the next silence of the same check.
create table ops.check_silences (
    check_id text primary key check (btrim(check_id) <> ''),
    reason text not null check (btrim(reason) <> ''),
    actor text not null,
    silenced_at timestamptz not null default now(),
    until timestamptz not null,
    check (until > silenced_at)
);

grant select, insert on ops.operator_actions to service_role;
grant select, insert, update, delete on ops.check_silences to service_role;

-- Cancel (the running statement) or terminate (the whole session) one client backend of this
-- database, and record it. Refuses the calling connection itself and backends of other
-- databases; an unknown pid is an error and nothing is recorded.
create function ops.signal_backend(
    target_pid integer,
    action text,
    reason text,
    actor text,
    terminate_wait_ms bigint default 5000
)
returns setof ops.operator_actions
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    backend record;
    delivered boolean;
    recorded ops.operator_actions;
begin
    if action is null or action not in ('cancel', 'terminate') then
        raise exception 'unknown action %: use cancel or terminate', action
            using errcode = 'invalid_parameter_value';
    end if;
    if reason is null or pg_catalog.btrim(reason) = '' then
        raise exception 'a reason is required to % a backend', action
            using errcode = 'invalid_parameter_value';
    end if;
    if target_pid = pg_catalog.pg_backend_pid() then
        raise exception 'backend % is the connection running this action; refusing to % it',
                target_pid, action
            using errcode = 'WS409';
    end if;
    select a.pid, a.datname::text as datname, a.usename::text as usename, a.application_name,
           a.backend_type, pg_catalog.left(a.query, 500) as query
      into backend
      from pg_catalog.pg_stat_activity a
     where a.pid = target_pid;
    if not found then
        raise exception 'no backend with pid % (it may have ended already)', target_pid
            using errcode = 'WS404',
                  hint = 'wedsync-db inspect connections lists the current backends';
    end if;
    if backend.backend_type is distinct from 'client backend' then
        raise exception 'backend % is a % process, not a client connection; refusing to % it',
                target_pid, coalesce(backend.backend_type, 'server'), action
            using errcode = 'WS409';
    end if;
    if backend.datname is distinct from pg_catalog.current_database() then
        raise exception 'backend % is connected to database %, not %; refusing to % it',
                target_pid, coalesce(backend.datname, '(none)'), pg_catalog.current_database(),
                action
            using errcode = 'WS409';
    end if;
    if action = 'cancel' then
        delivered := pg_catalog.pg_cancel_backend(target_pid);
    else
        delivered := pg_catalog.pg_terminate_backend(target_pid, terminate_wait_ms);
    end if;
    insert into ops.operator_actions as o
        (actor, action, reason, pid, backend_user, application_name, query_excerpt, result)
    values (signal_backend.actor, signal_backend.action, pg_catalog.btrim(signal_backend.reason),
            target_pid, backend.usename, backend.application_name, backend.query,
            case
                when action = 'cancel' and delivered then 'cancel requested'
                when action = 'cancel' then 'backend had ended'
                when delivered then 'terminated'
                else pg_catalog.format('still running after %s ms', terminate_wait_ms)
            end)
    returning * into recorded;
    return next recorded;
end
$$;
revoke execute on function ops.signal_backend(integer, text, text, text, bigint) from public;
grant execute on function ops.signal_backend(integer, text, text, text, bigint) to service_role;

-- The function runs as wedsync_ops, which may signal any non-superuser backend (never a
-- superuser's). ops.harden_database() revoked the signal functions from PUBLIC; their EXECUTE
-- comes back through pg_signal_backend.
do $$
begin
    grant pg_signal_backend to wedsync_ops;
exception when insufficient_privilege then
    raise notice 'pg_signal_backend could not be granted to wedsync_ops; '
        'ops.signal_backend() can only signal backends of the roles wedsync_ops belongs to';
end
$$;
grant select, insert on ops.operator_actions to wedsync_ops;
grant create on schema ops to wedsync_ops;
alter function ops.signal_backend(integer, text, text, text, bigint) owner to wedsync_ops;
revoke create on schema ops from wedsync_ops;
