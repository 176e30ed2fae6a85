-- Row Level Security: enabled and forced on every tenant table, one policy per command.
-- Membership look-ups run as service_role (BYPASSRLS) inside SECURITY DEFINER functions with a
-- fixed search_path, so policies never recurse into each other's RLS.

grant create on schema wedsync to service_role;

-- organizations the current user belongs to
create or replace function wedsync.user_organization_ids() returns setof uuid
    language sql stable security definer
    set search_path = ''
as $$
    select m.organization_id from public.organization_members m
    where m.user_id = wedsync.current_user_id()
$$;

-- organizations the current user administers (owner or admin)
create or replace function wedsync.user_admin_organization_ids() returns setof uuid
    language sql stable security definer
    set search_path = ''
as $$
    select m.organization_id from public.organization_members m
    where m.user_id = wedsync.current_user_id() and m.role in ('owner', 'admin')
$$;

-- weddings the current user belongs to (partners and planners)
create or replace function wedsync.user_wedding_ids() returns setof uuid
    language sql stable security definer
    set search_path = ''
as $$
    select w.wedding_id from public.wedding_members w
    where w.user_id = wedsync.current_user_id()
$$;

-- weddings on which the current user is a partner
create or replace function wedsync.user_partner_wedding_ids() returns setof uuid
    language sql stable security definer
    set search_path = ''
as $$
    select w.wedding_id from public.wedding_members w
    where w.user_id = wedsync.current_user_id() and w.role = 'partner'
$$;

-- weddings any of the current user's organizations works on
create or replace function wedsync.vendor_wedding_ids() returns setof uuid
    language sql stable security definer
    set search_path = ''
as $$
    select v.wedding_id
    from public.wedding_vendors v
    join public.organization_members m on m.organization_id = v.organization_id
    where m.user_id = wedsync.current_user_id()
$$;

-- weddings whose guest list the current user's organizations were given access to
create or replace function wedsync.vendor_guest_wedding_ids() returns setof uuid
    language sql stable security definer
    set search_path = ''
as $$
    select v.wedding_id
    from public.wedding_vendors v
    join public.organization_members m on m.organization_id = v.organization_id
    where m.user_id = wedsync.current_user_id() and v.can_view_guests
$$;

-- organizations working on the current user's weddings (couples see their vendors)
create or replace function wedsync.couple_vendor_organization_ids() returns setof uuid
    language sql stable security definer
    set search_path = ''
as $$
    select v.organization_id
    from public.wedding_vendors v
    join public.wedding_members w on w.wedding_id = v.wedding_id
    where w.user_id = wedsync.current_user_id()
$$;

alter function wedsync.user_organization_ids() owner to service_role;
alter function wedsync.user_admin_organization_ids() owner to service_role;
alter function wedsync.user_wedding_ids() owner to service_role;
alter function wedsync.user_partner_wedding_ids() owner to service_role;
alter function wedsync.vendor_wedding_ids() owner to service_role;
alter function wedsync.vendor_guest_wedding_ids() owner to service_role;
alter function wedsync.couple_vendor_organization_ids() owner to service_role;

revoke execute on all functions in schema wedsync from public;
grant execute on all functions in schema wedsync to anon, authenticated, service_role;

grant usage on schema public to anon, authenticated, service_role;
grant select, insert, update, delete on
    organizations, organization_members, clients, weddings, wedding_members, wedding_vendors,
    guests
    to authenticated, service_role;

alter table organizations enable row level security;
alter table organizations force row level security;
alter table organization_members enable row level security;
alter table organization_members force row level security;
alter table clients enable row level security;
alter table clients force row level security;
alter table weddings enable row level security;
alter table weddings force row level security;
alter table wedding_members enable row level security;
alter table wedding_members force row level security;
alter table wedding_vendors enable row level security;
alter table wedding_vendors force row level security;
alter table guests enable row level security;
alter table guests force row level security;

-- organizations: members see their own; couples see the vendors on their weddings;
-- organizations are created server-side (signup) with the service client.
create policy organizations_select on organizations for select to authenticated
    using (
        id in (select wedsync.user_organization_ids())
        or id in (select wedsync.couple_vendor_organization_ids())
    );
create policy organizations_insert on organizations for insert to authenticated
    with check (false);
create policy organizations_update on organizations for update to authenticated
    using (id in (select wedsync.user_admin_organization_ids()))
    with check (id in (select wedsync.user_admin_organization_ids()));
create policy organizations_delete on organizations for delete to authenticated
    using (id in (select wedsync.user_admin_organization_ids()));

-- organization_members: colleagues see each other; owners and admins manage membership
create policy organization_members_select on organization_members for select to authenticated
    using (organization_id in (select wedsync.user_organization_ids()));
create policy organization_members_insert on organization_members for insert to authenticated
    with check (organization_id in (select wedsync.user_admin_organization_ids()));
create policy organization_members_update on organization_members for update to authenticated
    using (organization_id in (select wedsync.user_admin_organization_ids()))
    with check (organization_id in (select wedsync.user_admin_organization_ids()));
create policy organization_members_delete on organization_members for delete to authenticated
    using (organization_id in (select wedsync.user_admin_organization_ids()));

-- clients: a vendor's CRM, visible only to its organization's members in the vendor portal
create policy clients_select on clients for select to authenticated
    using (
        (select wedsync.current_audience()) = 'vendor'
        and organization_id in (select wedsync.user_organization_ids())
    );
create policy clients_insert on clients for insert to authenticated
    with check (
        (select wedsync.current_audience()) = 'vendor'
        and organization_id in (select wedsync.user_organization_ids())
    );
create policy clients_update on clients for update to authenticated
    using (
        (select wedsync.current_audience()) = 'vendor'
        and organization_id in (select wedsync.user_organization_ids())
    )
    with check (
        (select wedsync.current_audience()) = 'vendor'
        and organization_id in (select wedsync.user_organization_ids())
    );
create policy clients_delete on clients for delete to authenticated
    using (
        (select wedsync.current_audience()) = 'vendor'
        and organization_id in (select wedsync.user_organization_ids())
    );

-- weddings: the couple (and planners) and the vendors linked to it see it; the couple edits it
create policy weddings_select on weddings for select to authenticated
    using (
        id in (select wedsync.user_wedding_ids())
        or id in (select wedsync.vendor_wedding_ids())
    );
create policy weddings_insert on weddings for insert to authenticated
    with check (false);
create policy weddings_update on weddings for update to authenticated
    using (id in (select wedsync.user_wedding_ids()))
    with check (id in (select wedsync.user_wedding_ids()));
create policy weddings_delete on weddings for delete to authenticated
    using (id in (select wedsync.user_partner_wedding_ids()));

-- wedding_members: members of a wedding see each other; partners manage membership
create policy wedding_members_select on wedding_members for select to authenticated
    using (wedding_id in (select wedsync.user_wedding_ids()));
create policy wedding_members_insert on wedding_members for insert to authenticated
    with check (wedding_id in (select wedsync.user_partner_wedding_ids()));
create policy wedding_members_update on wedding_members for update to authenticated
    using (wedding_id in (select wedsync.user_partner_wedding_ids()))
    with check (wedding_id in (select wedsync.user_partner_wedding_ids()));
create policy wedding_members_delete on wedding_members for delete to authenticated
    using (wedding_id in (select wedsync.user_partner_wedding_ids()));

-- wedding_vendors: the couple decides who works on the wedding and who sees guests;
-- a vendor sees its own links
create policy wedding_vendors_select on wedding_vendors for select to authenticated
    using (
        wedding_id in (select wedsync.user_wedding_ids())
        or organization_id in (select wedsync.user_organization_ids())
    );
create policy wedding_vendors_insert on wedding_vendors for insert to authenticated
    with check (wedding_id in (select wedsync.user_wedding_ids()));
create policy wedding_vendors_update on wedding_vendors for update to authenticated
    using (wedding_id in (select wedsync.user_wedding_ids()))
    with check (wedding_id in (select wedsync.user_wedding_ids()));
create policy wedding_vendors_delete on wedding_vendors for delete to authenticated
    using (wedding_id in (select wedsync.user_wedding_ids()));

-- guests: the couple sees and edits its own list; a vendor reads it only with guest access
create policy guests_select on guests for select to authenticated
    using (
        ((select wedsync.current_audience()) = 'couple'
            and wedding_id in (select wedsync.user_wedding_ids()))
        or ((select wedsync.current_audience()) = 'vendor'
            and wedding_id in (select wedsync.vendor_guest_wedding_ids()))
    );
create policy guests_insert on guests for insert to authenticated
    with check (
        (select wedsync.current_audience()) = 'couple'
        and wedding_id in (select wedsync.user_wedding_ids())
    );
create policy guests_update on guests for update to authenticated
    using (
        (select wedsync.current_audience()) = 'couple'
        and wedding_id in (select wedsync.user_wedding_ids())
    )
    with check (
        (select wedsync.current_audience()) = 'couple'
        and wedding_id in (select wedsync.user_wedding_ids())
    );
create policy guests_delete on guests for delete to authenticated
    using (
        (select wedsync.current_audience()) = 'couple'
        and wedding_id in (select wedsync.user_wedding_ids())
    );
