-- Security hardening: a user scope can never become more than its user.
--
-- * SECURITY DEFINER functions pin search_path = pg_catalog, pg_temp (pg_temp last, so no
--   temporary type, operator or function can shadow what they call) and are owned by NOLOGIN
--   roles that hold only what they need: wedsync_policy_owner (BYPASSRLS, reads the membership
--   tables) for the claim and membership helpers, wedsync_ops (pg_monitor) for ops.*.
-- * Claims are signed: the clients set request.jwt.claims together with an HMAC-SHA256 of it
--   (wedsync.claims_signature) under a key only the service side can read, and every helper
--   verifies it, so SQL running in a user scope cannot set another user's claims.
-- * wedsync.begin_scope() opens a user scope on a connection another identity used last: it
--   undoes whatever that scope left in the session (settings, role, LISTEN, cursors, advisory
--   locks); wedsync.assert_clean_session() refuses a session holding prepared statements made
--   with SQL PREPARE or temporary objects where user roles can make them at all.
-- * Vendor links are requests until a member of the organization accepts them.
-- * ops.harden_database() revokes what user roles must not have (TEMP, other sessions' query
--   texts and pg_stat_statements, signalling backends); the runner re-applies it after every
--   migration run because database-level privileges are not copied by CREATE DATABASE.
--
-- Upgrading takes a brief ACCESS EXCLUSIVE lock on wedding_vendors: its new columns have
-- constant defaults, so the table is not rewritten.

-- --- owner roles ------------------------------------------------------------------------------
do $$
begin
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'wedsync_policy_owner') then
        begin
            create role wedsync_policy_owner nologin noinherit bypassrls;
        exception when insufficient_privilege then
            raise notice 'wedsync_policy_owner (BYPASSRLS) could not be created by %: the '
                'claim and membership helpers stay owned by service_role', current_user;
        end;
    end if;
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'wedsync_ops') then
        create role wedsync_ops nologin inherit;
    end if;
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'wedsync_policy_owner')
       and not pg_catalog.pg_has_role(current_user, 'wedsync_policy_owner', 'member') then
        execute pg_catalog.format('grant wedsync_policy_owner to %I', current_user);
    end if;
    if not pg_catalog.pg_has_role(current_user, 'wedsync_ops', 'member') then
        execute pg_catalog.format('grant wedsync_ops to %I', current_user);
    end if;
    begin
        grant pg_monitor to wedsync_ops;
    exception when insufficient_privilege then
        raise notice 'pg_monitor could not be granted to wedsync_ops; ops.* reports see less';
    end;
end
$$;

-- --- vendor links need consent: a request until the organization answers it ----------------
alter table wedding_vendors
    add column status text not null default 'accepted'
        check (status in ('requested', 'accepted', 'declined')),
    add column requested_by uuid,
    add column requested_at timestamptz not null default now(),
    add column responded_by uuid,
    add column responded_at timestamptz;
-- links made before consent existed stay accepted; new ones start as requests
alter table wedding_vendors alter column status set default 'requested';

-- the role that owns the claim and membership helpers (service_role where BYPASSRLS roles
-- cannot be created by this login)
create function wedsync.policy_owner() returns name
    language sql stable
    set search_path = pg_catalog, pg_temp
as $$
    select case
        when exists (select 1 from pg_catalog.pg_roles where rolname = 'wedsync_policy_owner')
            then 'wedsync_policy_owner'::pg_catalog.name
        else 'service_role'::pg_catalog.name
    end
$$;
revoke execute on function wedsync.policy_owner() from public;

do $$
begin
    execute pg_catalog.format('grant usage on schema wedsync, public to %I', wedsync.policy_owner());
    execute pg_catalog.format(
        'grant select on public.organizations, public.organization_members, '
        'public.wedding_members, public.wedding_vendors to %I', wedsync.policy_owner());
end
$$;

-- --- signed claims ------------------------------------------------------------------------------
-- One HMAC-SHA256 key per database: the service side reads it to sign claims; the helpers
-- verify with the precomputed inner and outer pads (RFC 2104). No row: claims are accepted
-- unsigned, as PostgREST sets them (the security lint reports it).
create table wedsync.claims_signing_key (
    id boolean primary key default true check (id),
    key bytea not null check (pg_catalog.length(key) = 64),
    inner_pad bytea not null,
    outer_pad bytea not null,
    created_at timestamptz not null default pg_catalog.now()
);
revoke all on wedsync.claims_signing_key from public;
grant select on wedsync.claims_signing_key to service_role;

-- a fresh random key (gen_random_uuid draws from the server's strong random source)
create function wedsync.rotate_claims_signing_key() returns void
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $$
declare
    k bytea := pg_catalog.decode(pg_catalog.replace(
        pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text
        || pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text,
        '-', ''), 'hex');
    ipad bytea := k;
    opad bytea := k;
begin
    for i in 0..63 loop
        ipad := pg_catalog.set_byte(ipad, i, pg_catalog.get_byte(k, i) # 54);
        opad := pg_catalog.set_byte(opad, i, pg_catalog.get_byte(k, i) # 92);
    end loop;
    insert into wedsync.claims_signing_key (id, key, inner_pad, outer_pad)
    values (true, k, ipad, opad)
    on conflict (id) do update
        set key = excluded.key, inner_pad = excluded.inner_pad, outer_pad = excluded.outer_pad,
            created_at = pg_catalog.now();
end
$$;
revoke execute on function wedsync.rotate_claims_signing_key() from public;
select wedsync.rotate_claims_signing_key();

do $$
begin
    execute pg_catalog.format(
        'grant select (id, inner_pad, outer_pad) on wedsync.claims_signing_key to %I',
        wedsync.policy_owner());
end
$$;

-- raised (only) when a signature is missing or wrong; volatile, so that the planner never calls it
-- while estimating an expression
create function wedsync.reject_claims() returns jsonb
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $$
begin
    raise exception 'request.jwt.claims are not signed with this database''s claims key'
        using errcode = 'WS401',
              hint = 'open user scopes with wedsync-db''s as_user(); claims set by hand are refused';
end
$$;

-- request.jwt.claims as jsonb once its signature checks out; '{}' when no claims are set.
-- PL/pgSQL rather than SQL: its cached plans make the check a few microseconds per statement.
-- Runs as its caller and reads the key, so only the helpers' owner and service_role may call
-- it; everyone else uses wedsync.verified_claims().
create function wedsync.checked_claims() returns jsonb
    language plpgsql stable parallel safe
as $$
declare
    claims text := nullif(pg_catalog.current_setting('request.jwt.claims', true), '');
    k record;
begin
    if claims is null then
        return '{}'::pg_catalog.jsonb;
    end if;
    select inner_pad, outer_pad into k from wedsync.claims_signing_key where id;
    if found and pg_catalog.sha256(k.outer_pad operator(pg_catalog.||) pg_catalog.sha256(
                     k.inner_pad operator(pg_catalog.||) pg_catalog.convert_to(claims, 'UTF8')))
                 is distinct from pg_catalog.decode(nullif(pg_catalog.current_setting(
                     'wedsync.claims_signature', true), ''), 'hex')
    then
        return wedsync.reject_claims();
    end if;
    return claims::pg_catalog.jsonb;
end
$$;

-- the verified claims for everyone (policies, application SQL)
create function wedsync.verified_claims() returns jsonb
    language plpgsql stable parallel safe security definer
    set search_path = pg_catalog, pg_temp
as $$
begin
    return wedsync.checked_claims();
end
$$;

-- The claim helpers stay plain SQL without a SET clause so that the planner inlines them; every
-- name they use is qualified.

-- request.jwt.claims as jsonb (verified); an unset or empty setting means no claims
create or replace function wedsync.claims() returns jsonb
    language sql stable parallel safe
as $$
    select wedsync.verified_claims()
$$;

-- the user's id (claim sub); '' is treated as NULL
create or replace function wedsync.current_user_id() returns uuid
    language sql stable parallel safe
as $$
    select nullif(wedsync.verified_claims() operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid
$$;

-- the audience: 'vendor' (vendor portal) or 'couple' (couple app)
create or replace function wedsync.current_audience() returns text
    language sql stable parallel safe
as $$
    select nullif(wedsync.verified_claims() operator(pg_catalog.->>) 'aud', '')
$$;

-- --- membership helpers (SECURITY DEFINER, pinned search_path, fully qualified) ---------------
-- PL/pgSQL for the same reason as wedsync.checked_claims(); policies call them once per
-- statement as (select …).

-- organizations the current user belongs to
create or replace function wedsync.user_organization_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    me uuid := nullif(
        wedsync.checked_claims() operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
begin
    return query
        select m.organization_id from public.organization_members m
        where m.user_id operator(pg_catalog.=) me;
end
$$;

-- organizations the current user administers (owner or admin)
create or replace function wedsync.user_admin_organization_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    me uuid := nullif(
        wedsync.checked_claims() operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
begin
    return query
        select m.organization_id from public.organization_members m
        where m.user_id operator(pg_catalog.=) me
          and m.role operator(pg_catalog.=) any (array['owner', 'admin']);
end
$$;

-- organizations of the current user, in the vendor portal only
create function wedsync.vendor_organization_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    claims jsonb := wedsync.checked_claims();
begin
    if claims operator(pg_catalog.->>) 'aud' operator(pg_catalog.=) 'vendor' then
        return query
            select m.organization_id from public.organization_members m
            where m.user_id operator(pg_catalog.=)
                  nullif(claims operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
    end if;
end
$$;

-- weddings the current user belongs to (partners and planners)
create or replace function wedsync.user_wedding_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    me uuid := nullif(
        wedsync.checked_claims() operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
begin
    return query
        select w.wedding_id from public.wedding_members w
        where w.user_id operator(pg_catalog.=) me;
end
$$;

-- weddings on which the current user is a partner
create or replace function wedsync.user_partner_wedding_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    me uuid := nullif(
        wedsync.checked_claims() operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
begin
    return query
        select w.wedding_id from public.wedding_members w
        where w.user_id operator(pg_catalog.=) me
          and w.role operator(pg_catalog.=) 'partner';
end
$$;

-- weddings of the current user, in the couple app only (who may write the guest list)
create function wedsync.couple_wedding_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    claims jsonb := wedsync.checked_claims();
begin
    if claims operator(pg_catalog.->>) 'aud' operator(pg_catalog.=) 'couple' then
        return query
            select w.wedding_id from public.wedding_members w
            where w.user_id operator(pg_catalog.=)
                  nullif(claims operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
    end if;
end
$$;

-- weddings any of the current user's organizations works on (accepted links only)
create or replace function wedsync.vendor_wedding_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    me uuid := nullif(
        wedsync.checked_claims() operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
begin
    return query
        select v.wedding_id
        from public.wedding_vendors v
        join public.organization_members m
          on m.organization_id operator(pg_catalog.=) v.organization_id
        where m.user_id operator(pg_catalog.=) me
          and v.status operator(pg_catalog.=) 'accepted';
end
$$;

-- weddings whose guest list the current user's organizations may read (accepted, with access)
create or replace function wedsync.vendor_guest_wedding_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    me uuid := nullif(
        wedsync.checked_claims() operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
begin
    return query
        select v.wedding_id
        from public.wedding_vendors v
        join public.organization_members m
          on m.organization_id operator(pg_catalog.=) v.organization_id
        where m.user_id operator(pg_catalog.=) me
          and v.status operator(pg_catalog.=) 'accepted' and v.can_view_guests;
end
$$;

-- weddings whose guests the current user reads: the couple its own weddings, a vendor those
-- linked with guest access. The guest list is the hottest read, so this helper checks the
-- signature itself (the same check as wedsync.checked_claims(), without a second call).
create function wedsync.guest_wedding_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    raw text := nullif(pg_catalog.current_setting('request.jwt.claims', true), '');
    claims jsonb;
    k record;
    me uuid;
begin
    if raw is null then
        return;
    end if;
    select inner_pad, outer_pad into k from wedsync.claims_signing_key where id;
    if found and pg_catalog.sha256(k.outer_pad operator(pg_catalog.||) pg_catalog.sha256(
                     k.inner_pad operator(pg_catalog.||) pg_catalog.convert_to(raw, 'UTF8')))
                 is distinct from pg_catalog.decode(nullif(pg_catalog.current_setting(
                     'wedsync.claims_signature', true), ''), 'hex')
    then
        perform wedsync.reject_claims();
    end if;
    claims := raw::pg_catalog.jsonb;
    me := nullif(claims operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
    if claims operator(pg_catalog.->>) 'aud' operator(pg_catalog.=) 'couple' then
        return query
            select w.wedding_id from public.wedding_members w
            where w.user_id operator(pg_catalog.=) me;
    elsif claims operator(pg_catalog.->>) 'aud' operator(pg_catalog.=) 'vendor' then
        return query
            select v.wedding_id
            from public.organization_members m
            join public.wedding_vendors v
              on v.organization_id operator(pg_catalog.=) m.organization_id
            where m.user_id operator(pg_catalog.=) me
              and v.status operator(pg_catalog.=) 'accepted' and v.can_view_guests;
    end if;
end
$$;

-- organizations working on the current user's weddings (accepted links only)
create or replace function wedsync.couple_vendor_organization_ids() returns setof uuid
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    me uuid := nullif(
        wedsync.checked_claims() operator(pg_catalog.->>) 'sub', '')::pg_catalog.uuid;
begin
    return query
        select v.organization_id
        from public.wedding_vendors v
        join public.wedding_members w on w.wedding_id operator(pg_catalog.=) v.wedding_id
        where w.user_id operator(pg_catalog.=) me
          and v.status operator(pg_catalog.=) 'accepted';
end
$$;

-- --- clean sessions --------------------------------------------------------------------------
-- Raises WS409 when the session holds what no scope of wedsync-db's creates: prepared statements
-- made with SQL PREPARE (they could stand in for the client's own) or temporary objects. The
-- client then discards the session's state (DISCARD ALL) and tries again. Needed only where user
-- roles can list prepared statements or create temporary objects (the hardening revokes both),
-- so the client adds it to a scope's first statement only there.
create function wedsync.assert_clean_session() returns void
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
begin
    if exists (select 1 from pg_catalog.pg_prepared_statements s where s.from_sql)
       or (pg_catalog.pg_my_temp_schema() operator(pg_catalog.<>) 0 and (
               exists (select 1 from pg_catalog.pg_class c
                       where c.relnamespace operator(pg_catalog.=) pg_catalog.pg_my_temp_schema())
               or exists (select 1 from pg_catalog.pg_type t
                          where t.typnamespace operator(pg_catalog.=) pg_catalog.pg_my_temp_schema())
               or exists (select 1 from pg_catalog.pg_proc p
                          where p.pronamespace operator(pg_catalog.=) pg_catalog.pg_my_temp_schema())
               or exists (select 1 from pg_catalog.pg_operator o
                          where o.oprnamespace operator(pg_catalog.=) pg_catalog.pg_my_temp_schema())))
    then
        raise exception 'this session carries state left by an earlier scope'
            using errcode = 'WS409',
                  hint = 'the client discards the session''s state (DISCARD ALL) and retries';
    end if;
end
$$;

-- WS409 from SQL (wedsync.begin_scope): the client discards the session's state (DISCARD ALL)
-- and retries once
create function wedsync.refuse_session(reason text) returns void
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $$
begin
    raise exception '%', reason
        using errcode = 'WS409',
              hint = 'the client discards the session''s state (DISCARD ALL) and retries';
end
$$;

-- The first statement of every user scope: undo what the previous scope on the connection may
-- have left in the session (settings and role, LISTEN, cursors, advisory locks), then set the
-- scope's role, signed claims and application_name for this transaction only. ``read_only``: the
-- client's one-round-trip read, whose implicit transaction began under the session's defaults;
-- if an earlier scope had changed the default isolation, it is refused (WS409) and retried after
-- DISCARD ALL. It runs as its caller and qualifies every name, so it needs no SET clause (whose
-- cost every scope would pay). PostgreSQL 18 caches the plans of SQL functions, which makes an
-- SQL body the cheaper one there; older servers re-plan them on every call, so they get the same
-- steps in PL/pgSQL.
do $do$
begin
    if pg_catalog.current_setting('server_version_num')::integer >= 180000 then
        create function wedsync.begin_scope(
            role text, claims text, signature text, application_name text, read_only boolean
        ) returns void
            language sql volatile
        as $$
            reset all;
            unlisten *;
            close all;
            select pg_catalog.pg_advisory_unlock_all(),
                   pg_catalog.set_config('role', 'none', false),
                   case when read_only
                             and pg_catalog.current_setting('transaction_isolation')
                                 operator(pg_catalog.<>)
                                 pg_catalog.current_setting('default_transaction_isolation')
                        then wedsync.refuse_session('this transaction began with an isolation '
                                                    'level left by an earlier scope')
                   end,
                   pg_catalog.set_config('role', coalesce(role, 'none'), true),
                   pg_catalog.set_config('request.jwt.claims', coalesce(claims, ''), true),
                   pg_catalog.set_config('wedsync.claims_signature', coalesce(signature, ''), true),
                   pg_catalog.set_config('application_name', application_name, true),
                   case when read_only
                        then pg_catalog.set_config('transaction_read_only', 'on', true)
                   end;
        $$;
    else
        create function wedsync.begin_scope(
            role text, claims text, signature text, application_name text, read_only boolean
        ) returns void
            language plpgsql volatile
        as $$
        begin
            reset all;
            unlisten *;
            execute 'close all';
            if read_only and pg_catalog.current_setting('transaction_isolation')
                             operator(pg_catalog.<>)
                             pg_catalog.current_setting('default_transaction_isolation') then
                perform wedsync.refuse_session('this transaction began with an isolation level '
                                               'left by an earlier scope');
            end if;
            perform pg_catalog.pg_advisory_unlock_all(),
                    pg_catalog.set_config('role', 'none', false),
                    pg_catalog.set_config('role', coalesce(role, 'none'), true),
                    pg_catalog.set_config('request.jwt.claims', coalesce(claims, ''), true),
                    pg_catalog.set_config('wedsync.claims_signature', coalesce(signature, ''), true),
                    pg_catalog.set_config('application_name', application_name, true);
            if read_only then
                perform pg_catalog.set_config('transaction_read_only', 'on', true);
            end if;
        end
        $$;
    end if;
end
$do$;

-- --- vendor links need consent ------------------------------------------------------------------
-- Who may change what on a link, for user scopes (service code is trusted): the couple requests
-- (never with a client id, which would reveal another organization's CRM) and decides service
-- and guest access; a member of the organization accepts or declines once and may attach its
-- own client record; neither side moves a link.
create function wedsync.guard_vendor_link() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $$
declare
    me uuid;
begin
    if current_user operator(pg_catalog.<>) 'authenticated' then
        return new;
    end if;
    me := wedsync.current_user_id();
    if tg_op = 'INSERT' then
        if new.status operator(pg_catalog.<>) 'requested' or new.client_id is not null
           or new.responded_by is not null or new.responded_at is not null then
            raise exception 'a couple requests a vendor link; only the organization accepts it '
                'or attaches its client record'
                using errcode = 'insufficient_privilege';
        end if;
        new.requested_by := me;
        new.requested_at := pg_catalog.now();
        return new;
    end if;
    if new.wedding_id operator(pg_catalog.<>) old.wedding_id
       or new.organization_id operator(pg_catalog.<>) old.organization_id
       or new.requested_by is distinct from old.requested_by
       or new.requested_at is distinct from old.requested_at then
        raise exception 'a vendor link cannot be moved to another wedding or organization'
            using errcode = 'insufficient_privilege';
    end if;
    if (new.can_view_guests, new.service) is distinct from (old.can_view_guests, old.service)
       and not old.wedding_id in (select wedsync.user_wedding_ids()) then
        raise exception 'only the couple decides a vendor''s service and guest access'
            using errcode = 'insufficient_privilege';
    end if;
    if (new.status, new.client_id, new.responded_by, new.responded_at)
       is distinct from (old.status, old.client_id, old.responded_by, old.responded_at) then
        if not old.organization_id in (select wedsync.user_organization_ids()) then
            raise exception 'only a member of the organization answers a link request or '
                'attaches its client record'
                using errcode = 'insufficient_privilege';
        end if;
        if new.status is distinct from old.status then
            if old.status operator(pg_catalog.<>) 'requested'
               or new.status operator(pg_catalog.<>) all (array['accepted', 'declined']) then
                raise exception 'a link request is accepted or declined once (it is %)', old.status
                    using errcode = 'check_violation';
            end if;
            new.responded_by := me;
            new.responded_at := pg_catalog.now();
        elsif (new.responded_by, new.responded_at)
              is distinct from (old.responded_by, old.responded_at) then
            raise exception 'responded_by and responded_at record who answered the request'
                using errcode = 'insufficient_privilege';
        end if;
    end if;
    return new;
end
$$;

create trigger wedding_vendors_guard before insert or update on wedding_vendors
    for each row execute function wedsync.guard_vendor_link();

-- what anyone signed in may know of an organization: enough to find and request it
create view organization_profiles with (security_barrier) as
    select id, name, slug from organizations;
do $$
begin
    execute pg_catalog.format('alter view public.organization_profiles owner to %I',
                              wedsync.policy_owner());
end
$$;
grant select on organization_profiles to authenticated, service_role;

drop policy wedding_vendors_select on wedding_vendors;
drop policy wedding_vendors_insert on wedding_vendors;
drop policy wedding_vendors_update on wedding_vendors;
drop policy wedding_vendors_delete on wedding_vendors;
-- both sides see their links, requests included
create policy wedding_vendors_select on wedding_vendors for select to authenticated
    using (
        wedding_id in (select wedsync.user_wedding_ids())
        or organization_id in (select wedsync.user_organization_ids())
    );
-- the couple requests; a client id is never the couple's to give
create policy wedding_vendors_insert on wedding_vendors for insert to authenticated
    with check (
        wedding_id in (select wedsync.user_wedding_ids())
        and status = 'requested' and client_id is null
    );
-- both sides update; wedsync.guard_vendor_link() decides which fields each may change
create policy wedding_vendors_update on wedding_vendors for update to authenticated
    using (
        wedding_id in (select wedsync.user_wedding_ids())
        or organization_id in (select wedsync.user_organization_ids())
    )
    with check (
        wedding_id in (select wedsync.user_wedding_ids())
        or organization_id in (select wedsync.user_organization_ids())
    );
-- the couple ends a link; the organization's owners and admins withdraw from it
create policy wedding_vendors_delete on wedding_vendors for delete to authenticated
    using (
        wedding_id in (select wedsync.user_wedding_ids())
        or organization_id in (select wedsync.user_admin_organization_ids())
    );

-- --- guests and clients: one claims check per statement ----------------------------------------
drop policy guests_select on guests;
drop policy guests_insert on guests;
drop policy guests_update on guests;
drop policy guests_delete on guests;
create policy guests_select on guests for select to authenticated
    using (wedding_id in (select wedsync.guest_wedding_ids()));
create policy guests_insert on guests for insert to authenticated
    with check (wedding_id in (select wedsync.couple_wedding_ids()));
create policy guests_update on guests for update to authenticated
    using (wedding_id in (select wedsync.couple_wedding_ids()))
    with check (wedding_id in (select wedsync.couple_wedding_ids()));
create policy guests_delete on guests for delete to authenticated
    using (wedding_id in (select wedsync.couple_wedding_ids()));

drop policy clients_select on clients;
drop policy clients_insert on clients;
drop policy clients_update on clients;
drop policy clients_delete on clients;
create policy clients_select on clients for select to authenticated
    using (organization_id in (select wedsync.vendor_organization_ids()));
create policy clients_insert on clients for insert to authenticated
    with check (organization_id in (select wedsync.vendor_organization_ids()));
create policy clients_update on clients for update to authenticated
    using (organization_id in (select wedsync.vendor_organization_ids()))
    with check (organization_id in (select wedsync.vendor_organization_ids()));
create policy clients_delete on clients for delete to authenticated
    using (organization_id in (select wedsync.vendor_organization_ids()));

-- --- ownership and EXECUTE ---------------------------------------------------------------------
do $$
declare
    owner name := wedsync.policy_owner();
    f regprocedure;
begin
    execute pg_catalog.format('grant create on schema wedsync to %I', owner);
    foreach f in array array[
        'wedsync.checked_claims()', 'wedsync.verified_claims()', 'wedsync.user_organization_ids()',
        'wedsync.user_admin_organization_ids()', 'wedsync.vendor_organization_ids()',
        'wedsync.user_wedding_ids()', 'wedsync.user_partner_wedding_ids()',
        'wedsync.couple_wedding_ids()', 'wedsync.vendor_wedding_ids()',
        'wedsync.vendor_guest_wedding_ids()', 'wedsync.guest_wedding_ids()',
        'wedsync.couple_vendor_organization_ids()', 'wedsync.assert_clean_session()'
    ]::regprocedure[] loop
        execute pg_catalog.format('alter function %s owner to %I', f, owner);
    end loop;
    -- the owner needs CREATE only to take ownership
    if owner operator(pg_catalog.<>) 'service_role' then
        execute pg_catalog.format('revoke create on schema wedsync from %I', owner);
    end if;
end
$$;

revoke execute on all functions in schema wedsync from public, anon;
-- the policies (authenticated) and service code (service_role) need these; every policy is for
-- authenticated, so anon needs none of them
grant execute on function
    wedsync.claims(), wedsync.current_user_id(), wedsync.current_audience(),
    wedsync.verified_claims(), wedsync.reject_claims(),
    wedsync.user_organization_ids(), wedsync.user_admin_organization_ids(),
    wedsync.vendor_organization_ids(), wedsync.user_wedding_ids(),
    wedsync.user_partner_wedding_ids(), wedsync.couple_wedding_ids(),
    wedsync.vendor_wedding_ids(), wedsync.vendor_guest_wedding_ids(),
    wedsync.guest_wedding_ids(), wedsync.couple_vendor_organization_ids()
    to authenticated, service_role;
do $$
begin
    -- the membership helpers run as their owner and call the claim helpers
    execute pg_catalog.format(
        'grant execute on function wedsync.claims(), wedsync.current_user_id(), '
        'wedsync.current_audience(), wedsync.verified_claims(), wedsync.checked_claims(), '
        'wedsync.reject_claims() to %I',
        wedsync.policy_owner());
end
$$;
-- the user pool's first statement runs as whichever of its roles the session is in
grant usage on schema wedsync to wedsync_authenticator;
grant execute on function
    wedsync.begin_scope(text, text, text, text, boolean), wedsync.assert_clean_session(),
    wedsync.refuse_session(text)
    to wedsync_authenticator, anon, authenticated, service_role;

alter function wedsync.touch_row() set search_path = pg_catalog, pg_temp;

-- ops.*: owned by wedsync_ops (pg_monitor, never a superuser), search_path pinned
grant usage, create on schema ops to wedsync_ops;
alter function ops.connection_audience(text) set search_path = pg_catalog, pg_temp;
alter function ops.connection_stats() set search_path = pg_catalog, pg_temp;
alter function ops.query_stats(boolean) set search_path = pg_catalog, pg_temp;
alter function ops.performance_report(double precision, integer)
    set search_path = pg_catalog, pg_temp;
alter function ops.table_maintenance_report() set search_path = pg_catalog, pg_temp;
alter function ops.index_recommendations(bigint, bigint) set search_path = pg_catalog, pg_temp;
alter function ops.connection_audience(text) owner to wedsync_ops;
alter function ops.connection_stats() owner to wedsync_ops;
alter function ops.query_stats(boolean) owner to wedsync_ops;
alter function ops.performance_report(double precision, integer) owner to wedsync_ops;
alter function ops.table_maintenance_report() owner to wedsync_ops;
alter function ops.index_recommendations(bigint, bigint) owner to wedsync_ops;
revoke create on schema ops from wedsync_ops;

-- --- database-level hardening -----------------------------------------------------------------
-- What user roles must not have in this database, re-applied by the migration runner after every
-- run (CREATE DATABASE does not copy database-level privileges from its template). Objects of
-- pg_catalog belong to the bootstrap superuser: where this login cannot change them, the step
-- reports it and the security lint keeps saying what remains open.
create function ops.harden_database()
returns table (step text, outcome text, detail text)
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $$
declare
    item record;
    monitor_roles text := 'pg_monitor, service_role, wedsync_ops';
    pgss_schema name;
begin
    -- no temporary objects for user roles: they could shadow what SECURITY DEFINER code calls
    -- and outlive the scope that made them
    begin
        execute pg_catalog.format('revoke temporary on database %I from public',
                                  pg_catalog.current_database());
        execute pg_catalog.format('grant temporary on database %I to service_role, wedsync_ops',
                                  pg_catalog.current_database());
        step := 'temporary'; outcome := 'applied'; detail := 'TEMP revoked from PUBLIC';
    exception when insufficient_privilege then
        step := 'temporary'; outcome := 'skipped'; detail := sqlerrm;
    end;
    return next;

    select n.nspname into pgss_schema
    from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
    where e.extname = 'pg_stat_statements';

    for item in
        select * from (values
            ('query texts', 'table', 'pg_catalog.pg_stat_activity', monitor_roles),
            ('query texts', 'function', 'pg_catalog.pg_stat_get_activity(integer)', monitor_roles),
            ('query texts', 'function', 'pg_catalog.pg_stat_get_backend_activity(integer)',
             monitor_roles),
            -- wedsync.assert_clean_session() reads them as the policy owner
            ('prepared statements', 'table', 'pg_catalog.pg_prepared_statements',
             'service_role, wedsync_ops, ' || pg_catalog.quote_ident(wedsync.policy_owner())),
            ('prepared statements', 'function', 'pg_catalog.pg_prepared_statement()',
             'service_role, wedsync_ops, ' || pg_catalog.quote_ident(wedsync.policy_owner())),
            ('signal backends', 'function', 'pg_catalog.pg_cancel_backend(integer)',
             'pg_signal_backend, service_role'),
            -- a session-level advisory lock would outlive the scope and block whoever waits
            -- for it (the migration lock among them); transaction-level ones stay available
            ('session advisory locks', 'function', 'pg_catalog.pg_advisory_lock(bigint)',
             'service_role'),
            ('session advisory locks', 'function', 'pg_catalog.pg_advisory_lock(integer, integer)',
             'service_role'),
            ('session advisory locks', 'function', 'pg_catalog.pg_advisory_lock_shared(bigint)',
             'service_role'),
            ('session advisory locks', 'function',
             'pg_catalog.pg_advisory_lock_shared(integer, integer)', 'service_role'),
            ('session advisory locks', 'function', 'pg_catalog.pg_try_advisory_lock(bigint)',
             'service_role'),
            ('session advisory locks', 'function',
             'pg_catalog.pg_try_advisory_lock(integer, integer)', 'service_role'),
            ('session advisory locks', 'function',
             'pg_catalog.pg_try_advisory_lock_shared(bigint)', 'service_role'),
            ('session advisory locks', 'function',
             'pg_catalog.pg_try_advisory_lock_shared(integer, integer)', 'service_role'),
            ('signal backends', 'function', 'pg_catalog.pg_terminate_backend(integer, bigint)',
             'pg_signal_backend, service_role'),
            ('pg_stat_statements', 'table',
             pg_catalog.quote_ident(pgss_schema) || '.pg_stat_statements',
             'pg_read_all_stats, service_role, wedsync_ops'),
            ('pg_stat_statements', 'function',
             pg_catalog.quote_ident(pgss_schema) || '.pg_stat_statements(boolean)',
             'pg_read_all_stats, service_role, wedsync_ops')
        ) v(step, kind, object, grantees)
        where v.object is not null
    loop
        step := item.step;
        begin
            if item.kind = 'table' then
                execute pg_catalog.format('revoke all on %s from public', item.object);
                execute pg_catalog.format('grant select on %s to %s', item.object, item.grantees);
            elsif pg_catalog.to_regprocedure(item.object) is not null then
                execute pg_catalog.format('revoke execute on function %s from public',
                                          item.object);
                execute pg_catalog.format('grant execute on function %s to %s',
                                          item.object, item.grantees);
            else
                continue;
            end if;
            outcome := 'applied'; detail := pg_catalog.format('%s revoked from PUBLIC', item.object);
        exception when insufficient_privilege then
            outcome := 'skipped';
            detail := pg_catalog.format('%s: %s (needs the object''s owner, a superuser)',
                                        item.object, sqlerrm);
        end;
        return next;
    end loop;
end
$$;
revoke execute on function ops.harden_database() from public;

select * from ops.harden_database();
