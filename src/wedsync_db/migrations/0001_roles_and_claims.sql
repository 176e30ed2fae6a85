-- Roles (Supabase/PostgREST names), the authenticator login of the user pool, and the claim
-- helpers every policy calls as (select wedsync.current_user_id()) so they are evaluated once.

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    -- the user pool logs in as this role and can only become anon or authenticated
    if not exists (select 1 from pg_roles where rolname = 'wedsync_authenticator') then
        create role wedsync_authenticator login noinherit;
    end if;
end
$$;

grant anon, authenticated to wedsync_authenticator;

-- the migration login (which the service pool also uses) may assume service_role
do $$
begin
    if not pg_has_role(current_user, 'service_role', 'member') then
        execute format('grant service_role to %I', current_user);
    end if;
end
$$;

-- monitoring views show other sessions' queries only to pg_read_all_stats members
do $$
begin
    grant pg_monitor to service_role;
exception when insufficient_privilege then
    raise notice 'pg_monitor could not be granted to service_role; monitoring sees less';
end
$$;

create schema if not exists wedsync;
revoke all on schema wedsync from public;
grant usage on schema wedsync to anon, authenticated, service_role;

-- The claim helpers are plain SQL functions with no SET clause so that the planner inlines them
-- into policies; every name they use is schema-qualified. The single-claim settings
-- (request.jwt.claim.sub / .aud, set by wedsync-db's clients) spare a JSON parse; the JSON
-- document (what PostgREST sets) is the fallback.

-- request.jwt.claims as jsonb; an unset or empty setting means no claims
create or replace function wedsync.claims() returns jsonb
    language sql stable parallel safe
as $$
    select coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb,
        '{}'::jsonb
    )
$$;

-- the user's id (claim sub); '' is treated as NULL
create or replace function wedsync.current_user_id() returns uuid
    language sql stable parallel safe
as $$
    select coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
        nullif(
            nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
            ''
        )
    )::uuid
$$;

-- the audience: 'vendor' (vendor portal) or 'couple' (couple app)
create or replace function wedsync.current_audience() returns text
    language sql stable parallel safe
as $$
    select coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claim.aud', true), ''),
        nullif(
            nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'aud',
            ''
        )
    )
$$;

grant execute on function wedsync.claims(), wedsync.current_user_id(), wedsync.current_audience()
    to anon, authenticated, service_role;
