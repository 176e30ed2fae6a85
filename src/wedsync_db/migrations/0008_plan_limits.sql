-- Plan limits in the database: what an organization's plan allows, what it uses, and a refusal
-- (SQLSTATE WS402) when a user's statement would go beyond it.
--
-- * public.plans: free / starter / professional / scale / enterprise with maxima for clients,
--   members, weddings and guests per wedding; NULL means unlimited. An organization's plan is
--   organizations.tier (default 'free', as before): one column names it, and only service code
--   changes it. public.organization_limit_overrides replaces one maximum of one organization
--   (a row with maximum NULL lifts that limit).
-- * public.organization_usage (clients, members, weddings = accepted vendor links) and
--   public.wedding_usage (guests) are kept by statement-level triggers with transition tables:
--   a bulk insert costs one counter update per organization or wedding. The update takes the
--   counter row's lock and the limit is checked after the increment, so concurrent inserts
--   cannot both take the last place.
-- * Limits bind user scopes (anon, authenticated); service code is trusted, like the vendor-link
--   guard: its rows are counted but never refused, which leaves usage above a maximum exactly as
--   a downgrade does. Nothing is ever deleted to fit a plan: growth is refused until usage is
--   below the maximum again.
-- * Members of an organization read its usage, overrides and every plan; nobody but the
--   triggers and service code writes them.
-- * A wedding's guest limit is the most generous guests_per_wedding among the organizations
--   working on it (accepted links); a wedding no organization works on gets the free plan's.
--
-- Upgrading takes brief SHARE ROW EXCLUSIVE locks (writes wait, reads continue) on the counted
-- tables for the triggers and on organizations for the foreign key; the counters are filled
-- from the tables in the same transaction.

create table plans (
    name text primary key check (name ~ '^[a-z][a-z0-9_]*$'),
    title text not null,
    max_clients integer check (max_clients >= 0),
    max_members integer check (max_members >= 0),
    max_weddings integer check (max_weddings >= 0),
    max_guests_per_wedding integer check (max_guests_per_wedding >= 0)
);
insert into plans (name, title, max_clients, max_members, max_weddings, max_guests_per_wedding)
values
    ('free', 'Free', 50, 5, 20, 200),
    ('starter', 'Starter', 250, 10, 100, 300),
    ('professional', 'Professional', 2000, 25, 500, 500),
    ('scale', 'Scale', 10000, 100, 2500, 1000),
    ('enterprise', 'Enterprise', null, null, null, null);

-- the plan of an organization is its tier. NOT VALID: the check constraint on tier already
-- allows only these five names, so existing rows need no scan; new and changed rows are checked.
alter table organizations
    add constraint organizations_tier_fkey foreign key (tier) references plans (name) not valid;

create table organization_limit_overrides (
    organization_id uuid not null references organizations (id) on delete cascade,
    limit_name text not null
        check (limit_name in ('clients', 'members', 'weddings', 'guests_per_wedding')),
    maximum integer check (maximum >= 0),
    reason text not null check (length(reason) between 1 and 500),
    created_at timestamptz not null default now(),
    primary key (organization_id, limit_name)
);

create table organization_usage (
    organization_id uuid primary key references organizations (id) on delete cascade,
    clients integer not null default 0,
    members integer not null default 0,
    weddings integer not null default 0,
    updated_at timestamptz not null default now()
);

create table wedding_usage (
    wedding_id uuid primary key references weddings (id) on delete cascade,
    guests integer not null default 0,
    updated_at timestamptz not null default now()
);

insert into organization_usage (organization_id, clients, members, weddings)
select o.id,
       (select count(*) from clients c where c.organization_id = o.id),
       (select count(*) from organization_members m where m.organization_id = o.id),
       (select count(*) from wedding_vendors v
        where v.organization_id = o.id and v.status = 'accepted')
from organizations o;
insert into wedding_usage (wedding_id, guests)
select w.id, (select count(*) from guests g where g.wedding_id = w.id) from weddings w;

-- --- RLS: everyone signed in reads the plans; members read their organization's usage --------
alter table plans enable row level security;
alter table plans force row level security;
alter table organization_limit_overrides enable row level security;
alter table organization_limit_overrides force row level security;
alter table organization_usage enable row level security;
alter table organization_usage force row level security;
alter table wedding_usage enable row level security;
alter table wedding_usage force row level security;

create policy plans_select on plans for select to authenticated using (true);
create policy organization_limit_overrides_select on organization_limit_overrides
    for select to authenticated
    using (organization_id in (select wedsync.user_organization_ids()));
create policy organization_usage_select on organization_usage for select to authenticated
    using (organization_id in (select wedsync.user_organization_ids()));
create policy wedding_usage_select on wedding_usage for select to authenticated
    using (
        wedding_id in (select wedsync.user_wedding_ids())
        or wedding_id in (select wedsync.vendor_wedding_ids())
    );

revoke all on plans, organization_limit_overrides, organization_usage, wedding_usage
    from public, anon, authenticated;
grant select on plans, organization_limit_overrides, organization_usage, wedding_usage
    to authenticated;
grant select, insert, update, delete
    on plans, organization_limit_overrides, organization_usage, wedding_usage to service_role;

-- --- limits -----------------------------------------------------------------------------------
-- The maximum of one limit for an organization: its override if it has one, else its plan's
-- (NULL: unlimited).
create function wedsync.organization_limit(organization uuid, limit_name text) returns integer
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    maximum integer;
begin
    select o.maximum into maximum from public.organization_limit_overrides o
    where o.organization_id operator(pg_catalog.=) organization
      and o.limit_name operator(pg_catalog.=) organization_limit.limit_name;
    if found then
        return maximum;
    end if;
    select case organization_limit.limit_name
               when 'clients' then p.max_clients
               when 'members' then p.max_members
               when 'weddings' then p.max_weddings
               when 'guests_per_wedding' then p.max_guests_per_wedding
           end
      into maximum
    from public.organizations g
    join public.plans p on p.name operator(pg_catalog.=) g.tier
    where g.id operator(pg_catalog.=) organization;
    return maximum;
end
$$;

-- The guest limit of a wedding: the most generous among the organizations working on it
-- (accepted links; NULL when one of them is unlimited), the free plan's when none does.
create function wedsync.wedding_guest_limit(wedding uuid) returns integer
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    links integer;
    unlimited boolean;
    maximum integer;
begin
    select pg_catalog.count(*), pg_catalog.bool_or(l.m is null), pg_catalog.max(l.m)
      into links, unlimited, maximum
    from (select wedsync.organization_limit(v.organization_id, 'guests_per_wedding') as m
          from public.wedding_vendors v
          where v.wedding_id operator(pg_catalog.=) wedding
            and v.status operator(pg_catalog.=) 'accepted') l;
    if links operator(pg_catalog.>) 0 then
        return case when unlimited then null else maximum end;
    end if;
    select p.max_guests_per_wedding into maximum from public.plans p
    where p.name operator(pg_catalog.=) 'free';
    return maximum;
end
$$;

-- Raised when a user's statement would take usage beyond a maximum; the detail is JSON with
-- the limit, the usage before the statement, the maximum and what the statement adds.
create function wedsync.refuse_over_limit(
    limit_name text, current_usage integer, maximum integer, adding integer
) returns void
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $$
begin
    raise exception 'plan limit reached: % is at % of % and this statement adds %',
        limit_name, current_usage, maximum, adding
        using errcode = 'WS402',
              detail = pg_catalog.json_build_object(
                  'limit', limit_name, 'current', current_usage, 'maximum', maximum,
                  'adding', adding)::text,
              hint = 'upgrade the plan, or remove some first; nothing is deleted to fit a plan';
end
$$;

-- --- counters ---------------------------------------------------------------------------------
-- Statement-level AFTER trigger: TG_ARGV = usage table, its key column (also the tenant key of
-- the counted table), counter column, and a filter on the counted rows. Transition tables
-- new_rows / old_rows are present as the event has them. Counters change in key order, so two
-- bulk statements never wait for each other in opposite orders.
create function wedsync.count_usage() returns trigger
    language plpgsql security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    usage_table text := tg_argv[0];
    key_column text := tg_argv[1];
    counter text := tg_argv[2];
    filter text := tg_argv[3];
    parts text[] := '{}';
    d record;
    reached integer;
    maximum integer;
    -- user scopes are refused; a service session acting as itself is trusted
    enforce boolean := pg_catalog.current_setting('role') operator(pg_catalog.=)
                           any (array['anon', 'authenticated'])
                       or not pg_catalog.pg_has_role(session_user, 'service_role', 'member');
begin
    if tg_op operator(pg_catalog.<>) 'DELETE' then
        parts := parts operator(pg_catalog.||) pg_catalog.format(
            'select %I as key, 1 as delta from new_rows where %s', key_column, filter);
    end if;
    if tg_op operator(pg_catalog.<>) 'INSERT' then
        parts := parts operator(pg_catalog.||) pg_catalog.format(
            'select %I as key, -1 as delta from old_rows where %s', key_column, filter);
    end if;
    for d in execute pg_catalog.format(
        'select key, pg_catalog.sum(delta)::integer as delta from (%s) c group by key '
        'having pg_catalog.sum(delta) operator(pg_catalog.<>) 0 order by key',
        pg_catalog.array_to_string(parts, ' union all '))
    loop
        if d.delta operator(pg_catalog.<) 0 then
            -- no row (its organization or wedding is being deleted): nothing to count
            execute pg_catalog.format(
                'update public.%1$I set %2$I = %2$I operator(pg_catalog.+) $2, '
                'updated_at = pg_catalog.now() where %3$I operator(pg_catalog.=) $1',
                usage_table, counter, key_column)
                using d.key, d.delta;
            continue;
        end if;
        execute pg_catalog.format(
            'insert into public.%1$I as u (%3$I, %2$I) values ($1, $2) '
            'on conflict (%3$I) do update set %2$I = u.%2$I operator(pg_catalog.+) excluded.%2$I, '
            'updated_at = pg_catalog.now() returning u.%2$I',
            usage_table, counter, key_column)
            into reached using d.key, d.delta;
        if enforce then
            if usage_table operator(pg_catalog.=) 'wedding_usage' then
                maximum := wedsync.wedding_guest_limit(d.key);
            else
                maximum := wedsync.organization_limit(d.key, counter);
            end if;
            if reached operator(pg_catalog.>) maximum then
                perform wedsync.refuse_over_limit(
                    case when usage_table operator(pg_catalog.=) 'wedding_usage'
                         then 'guests_per_wedding' else counter end,
                    reached operator(pg_catalog.-) d.delta, maximum, d.delta);
            end if;
        end if;
    end loop;
    return null;
end
$$;

create trigger clients_usage_insert after insert on clients
    referencing new table as new_rows for each statement
    execute function wedsync.count_usage('organization_usage', 'organization_id', 'clients', 'true');
create trigger clients_usage_update after update on clients
    referencing old table as old_rows new table as new_rows for each statement
    execute function wedsync.count_usage('organization_usage', 'organization_id', 'clients', 'true');
create trigger clients_usage_delete after delete on clients
    referencing old table as old_rows for each statement
    execute function wedsync.count_usage('organization_usage', 'organization_id', 'clients', 'true');

create trigger organization_members_usage_insert after insert on organization_members
    referencing new table as new_rows for each statement
    execute function wedsync.count_usage('organization_usage', 'organization_id', 'members', 'true');
create trigger organization_members_usage_update after update on organization_members
    referencing old table as old_rows new table as new_rows for each statement
    execute function wedsync.count_usage('organization_usage', 'organization_id', 'members', 'true');
create trigger organization_members_usage_delete after delete on organization_members
    referencing old table as old_rows for each statement
    execute function wedsync.count_usage('organization_usage', 'organization_id', 'members', 'true');

-- weddings an organization works on: accepted links (a request counts once it is accepted)
create trigger wedding_vendors_usage_insert after insert on wedding_vendors
    referencing new table as new_rows for each statement
    execute function wedsync.count_usage(
        'organization_usage', 'organization_id', 'weddings', 'status = ''accepted''');
create trigger wedding_vendors_usage_update after update on wedding_vendors
    referencing old table as old_rows new table as new_rows for each statement
    execute function wedsync.count_usage(
        'organization_usage', 'organization_id', 'weddings', 'status = ''accepted''');
create trigger wedding_vendors_usage_delete after delete on wedding_vendors
    referencing old table as old_rows for each statement
    execute function wedsync.count_usage(
        'organization_usage', 'organization_id', 'weddings', 'status = ''accepted''');

create trigger guests_usage_insert after insert on guests
    referencing new table as new_rows for each statement
    execute function wedsync.count_usage('wedding_usage', 'wedding_id', 'guests', 'true');
create trigger guests_usage_update after update on guests
    referencing old table as old_rows new table as new_rows for each statement
    execute function wedsync.count_usage('wedding_usage', 'wedding_id', 'guests', 'true');
create trigger guests_usage_delete after delete on guests
    referencing old table as old_rows for each statement
    execute function wedsync.count_usage('wedding_usage', 'wedding_id', 'guests', 'true');

-- --- the plan is service code's to change -------------------------------------------------------
create function wedsync.guard_organization_plan() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $$
begin
    if new.tier is distinct from old.tier
       and current_user operator(pg_catalog.=) any (array['anon', 'authenticated']) then
        raise exception 'an organization''s plan (tier) is changed by billing, not by its members'
            using errcode = 'insufficient_privilege';
    end if;
    return new;
end
$$;
create trigger organizations_guard_plan before update on organizations
    for each row execute function wedsync.guard_organization_plan();

-- --- recount ----------------------------------------------------------------------------------
-- Recount every counter from the tables; returns the counters that differed (and fixes them
-- unless dry_run). Run by service code (`wedsync-db usage reconcile`).
create function ops.reconcile_usage(dry_run boolean)
returns table (scope text, id uuid, counter text, recorded integer, actual integer)
    language sql volatile
    set search_path = pg_catalog, pg_temp
as $$
    with organization_actual as (
        select o.id,
               (select pg_catalog.count(*)::integer from public.clients c
                where c.organization_id operator(pg_catalog.=) o.id) as clients,
               (select pg_catalog.count(*)::integer from public.organization_members m
                where m.organization_id operator(pg_catalog.=) o.id) as members,
               (select pg_catalog.count(*)::integer from public.wedding_vendors v
                where v.organization_id operator(pg_catalog.=) o.id
                  and v.status operator(pg_catalog.=) 'accepted') as weddings
        from public.organizations o
    ),
    organization_drift as (
        select 'organization'::text as scope, a.id, x.counter, x.recorded, x.actual
        from organization_actual a
        left join public.organization_usage u on u.organization_id operator(pg_catalog.=) a.id
        cross join lateral (values
            ('clients', u.clients, a.clients),
            ('members', u.members, a.members),
            ('weddings', u.weddings, a.weddings)) x (counter, recorded, actual)
        where x.recorded is distinct from x.actual
    ),
    wedding_drift as (
        select 'wedding'::text as scope, w.id, 'guests'::text as counter, u.guests as recorded,
               (select pg_catalog.count(*)::integer from public.guests g
                where g.wedding_id operator(pg_catalog.=) w.id) as actual
        from public.weddings w
        left join public.wedding_usage u on u.wedding_id operator(pg_catalog.=) w.id
    ),
    fixed_organizations as (
        insert into public.organization_usage as u (organization_id, clients, members, weddings)
        select a.id, a.clients, a.members, a.weddings from organization_actual a
        where not dry_run and a.id in (select d.id from organization_drift d)
        on conflict (organization_id) do update set
            clients = excluded.clients, members = excluded.members, weddings = excluded.weddings,
            updated_at = pg_catalog.now()
    ),
    fixed_weddings as (
        insert into public.wedding_usage as u (wedding_id, guests)
        select d.id, d.actual from wedding_drift d
        where not dry_run and d.recorded is distinct from d.actual
        on conflict (wedding_id) do update set guests = excluded.guests,
                                               updated_at = pg_catalog.now()
    )
    select d.scope, d.id, d.counter, d.recorded, d.actual from organization_drift d
    union all
    select d.scope, d.id, d.counter, d.recorded, d.actual from wedding_drift d
    where d.recorded is distinct from d.actual
    order by 1, 2, 3
$$;
revoke execute on function ops.reconcile_usage(boolean) from public;
grant execute on function ops.reconcile_usage(boolean) to service_role;

-- --- ownership and EXECUTE ---------------------------------------------------------------------
do $$
declare
    owner name := wedsync.policy_owner();
    f regprocedure;
begin
    execute pg_catalog.format(
        'grant select, insert, update on public.organization_usage, public.wedding_usage to %I',
        owner);
    execute pg_catalog.format(
        'grant select on public.plans, public.organization_limit_overrides to %I', owner);
    execute pg_catalog.format('grant create on schema wedsync to %I', owner);
    foreach f in array array[
        'wedsync.organization_limit(uuid, text)', 'wedsync.wedding_guest_limit(uuid)',
        'wedsync.count_usage()'
    ]::regprocedure[] loop
        execute pg_catalog.format('alter function %s owner to %I', f, owner);
    end loop;
    if owner operator(pg_catalog.<>) 'service_role' then
        execute pg_catalog.format('revoke create on schema wedsync from %I', owner);
    end if;
    execute pg_catalog.format(
        'grant execute on function wedsync.organization_limit(uuid, text), '
        'wedsync.refuse_over_limit(text, integer, integer, integer) to %I', owner);
end
$$;
revoke execute on function
    wedsync.organization_limit(uuid, text), wedsync.wedding_guest_limit(uuid),
    wedsync.refuse_over_limit(text, integer, integer, integer), wedsync.count_usage(),
    wedsync.guard_organization_plan()
    from public, anon;
grant execute on function wedsync.organization_limit(uuid, text), wedsync.wedding_guest_limit(uuid)
    to service_role;
