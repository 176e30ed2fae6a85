-- wedsync:allow tenant-table-without-rls: RLS is enabled and forced on every table in 0003_tenant_isolation.sql, applied in the same run before any application connects
-- Tenant tables. Every primary key leads with the tenant key (organization_id or wedding_id)
-- so that the schema can be distributed by tenant (Citus) without changing keys.

create table organizations (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(name) between 1 and 200),
    slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    tier text not null default 'free'
        check (tier in ('free', 'starter', 'professional', 'scale', 'enterprise')),
    timezone text not null default 'Europe/London',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table organization_members (
    organization_id uuid not null references organizations (id) on delete cascade,
    user_id uuid not null,
    role text not null default 'member' check (role in ('owner', 'admin', 'member')),
    created_at timestamptz not null default now(),
    primary key (organization_id, user_id)
);
create index organization_members_user_id_idx on organization_members (user_id, organization_id);

create table clients (
    organization_id uuid not null references organizations (id) on delete cascade,
    id uuid not null default gen_random_uuid(),
    partner1_name text not null,
    partner2_name text,
    email text,
    phone text,
    wedding_date date,
    venue text,
    status text not null default 'lead'
        check (status in ('lead', 'booked', 'completed', 'cancelled')),
    external_ref text,
    notes text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organization_id, id),
    unique (organization_id, external_ref)
);
create index clients_wedding_date_idx on clients (organization_id, wedding_date);

create table weddings (
    id uuid primary key default gen_random_uuid(),
    title text not null,
    wedding_date date not null,
    venue text,
    timezone text not null default 'Europe/London',
    status text not null default 'planning'
        check (status in ('planning', 'confirmed', 'completed', 'cancelled')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
-- the freeze policy and the calendar count weddings per day
create index weddings_wedding_date_idx on weddings (wedding_date);

create table wedding_members (
    wedding_id uuid not null references weddings (id) on delete cascade,
    user_id uuid not null,
    role text not null default 'partner' check (role in ('partner', 'planner')),
    created_at timestamptz not null default now(),
    primary key (wedding_id, user_id)
);
create index wedding_members_user_id_idx on wedding_members (user_id, wedding_id);

create table wedding_vendors (
    wedding_id uuid not null references weddings (id) on delete cascade,
    organization_id uuid not null references organizations (id) on delete cascade,
    client_id uuid,
    service text not null default 'other',
    can_view_guests boolean not null default false,
    created_at timestamptz not null default now(),
    primary key (wedding_id, organization_id),
    foreign key (organization_id, client_id) references clients (organization_id, id)
        on delete set null (client_id)
);
create index wedding_vendors_organization_id_idx
    on wedding_vendors (organization_id, wedding_id) include (can_view_guests);
create index wedding_vendors_client_idx on wedding_vendors (organization_id, client_id);

create table guests (
    wedding_id uuid not null references weddings (id) on delete cascade,
    id uuid not null default gen_random_uuid(),
    first_name text not null,
    last_name text,
    email text,
    rsvp_status text not null default 'pending'
        check (rsvp_status in ('pending', 'accepted', 'declined', 'maybe')),
    dietary_requirements text[] not null default '{}',
    table_number integer check (table_number > 0),
    plus_one boolean not null default false,
    plus_one_name text,
    notes text,
    version integer not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (wedding_id, id)
);

-- optimistic concurrency: every update bumps version and updated_at
create or replace function wedsync.touch_row() returns trigger
    language plpgsql
    set search_path = ''
as $$
begin
    new.updated_at := now();
    if tg_table_name = 'guests' then
        new.version := old.version + 1;
    end if;
    return new;
end
$$;

create trigger guests_touch before update on guests
    for each row execute function wedsync.touch_row();
create trigger clients_touch before update on clients
    for each row execute function wedsync.touch_row();
create trigger organizations_touch before update on organizations
    for each row execute function wedsync.touch_row();
create trigger weddings_touch before update on weddings
    for each row execute function wedsync.touch_row();
