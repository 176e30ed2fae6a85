-- wedsync:allow blocking-lock-on-existing-table: the foreign keys of the new ops.imports hold SHARE ROW EXCLUSIVE on organizations and weddings only for this short file (new tables, no data to check)
-- Bulk import of a vendor's clients and a couple's guests from CSV files.
--
-- * ops.imports: one row per import — who (actor), when, what file (sha256, size), into which
--   organization or wedding, the outcome and its counts. The importing user opens it in its own
--   scope, so RLS decides at once whether the user may import into that organization (a member,
--   in the vendor portal) or wedding (the couple); the user finishes it; members of the
--   organization (the couple of the wedding) read it.
-- * ops.import_errors: the per-row errors of an import (line, column, value truncated, reason).
-- * ops.import_client_rows / ops.import_guest_rows: the staging area, one text column per
--   field. User roles cannot create temporary tables (0005) and PostgreSQL refuses COPY FROM
--   into a table with row level security, so the import code COPYs the file's rows in as
--   service_role, stamped with the import and its actor (column defaults read from settings
--   the COPY's transaction sets); the user's scope then reads and deletes only its own staged
--   rows (RLS) and writes clients and guests with INSERT … SELECT / UPDATE under its own RLS.
--   UNLOGGED: staged rows are transient (a crash empties the table, and the import is redone).
--
-- New tables only: no lock on an existing table beyond the foreign keys' SHARE ROW EXCLUSIVE on
-- organizations and weddings.

grant usage on schema ops to authenticated;

create table ops.imports (
    id uuid primary key default gen_random_uuid(),
    kind text not null check (kind in ('clients', 'guests')),
    organization_id uuid references public.organizations (id) on delete cascade,
    wedding_id uuid references public.weddings (id) on delete cascade,
    actor uuid not null default wedsync.current_user_id(),
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    file_name text check (length(file_name) <= 255),
    file_sha256 text not null check (file_sha256 ~ '^[0-9a-f]{64}$'),
    file_bytes bigint not null check (file_bytes >= 0),
    -- what decides the outcome besides the file (column map, skip-bad-rows, date order)
    options jsonb not null default '{}',
    options_key text not null,
    status text not null default 'staging'
        check (status in ('staging', 'imported', 'failed', 'refused')),
    rows integer not null default 0,
    inserted integer not null default 0,
    updated integer not null default 0,
    unchanged integer not null default 0,
    skipped integer not null default 0,
    error_count integer not null default 0,
    message text,
    -- how the file was read: encoding, delimiter, columns and what they became, ignored columns
    format jsonb not null default '{}',
    check ((kind = 'clients') = (organization_id is not null)),
    check ((kind = 'guests') = (wedding_id is not null))
);
-- an identical file into the same target returns the earlier report; deleting an organization
-- or a wedding finds its imports (the foreign keys)
create index imports_organization_file_idx on ops.imports (organization_id, file_sha256);
create index imports_wedding_file_idx on ops.imports (wedding_id, file_sha256);
create index imports_actor_idx on ops.imports (actor, created_at);

create table ops.import_errors (
    import_id uuid not null references ops.imports (id) on delete cascade,
    line integer not null,
    field text not null,
    value text,
    reason text not null,
    primary key (import_id, line, field)
);

create unlogged table ops.import_client_rows (
    import_id uuid not null default (pg_catalog.current_setting('wedsync.import_id'))::uuid,
    actor uuid not null default (pg_catalog.current_setting('wedsync.import_actor'))::uuid,
    line integer not null,
    -- a problem found while reading the row (ragged, too long, not a date)
    bad_field text,
    bad_value text,
    bad_reason text,
    partner1_name text,
    partner2_name text,
    email text,
    phone text,
    wedding_date text,
    venue text,
    status text,
    external_ref text,
    notes text
);

create unlogged table ops.import_guest_rows (
    import_id uuid not null default (pg_catalog.current_setting('wedsync.import_id'))::uuid,
    actor uuid not null default (pg_catalog.current_setting('wedsync.import_actor'))::uuid,
    line integer not null,
    bad_field text,
    bad_value text,
    bad_reason text,
    first_name text,
    last_name text,
    email text,
    rsvp_status text,
    dietary_requirements text,
    table_number text,
    plus_one text,
    plus_one_name text,
    notes text
);

-- --- RLS ----------------------------------------------------------------------------------------
alter table ops.imports enable row level security;
alter table ops.imports force row level security;
alter table ops.import_errors enable row level security;
alter table ops.import_errors force row level security;
alter table ops.import_client_rows enable row level security;
alter table ops.import_client_rows force row level security;
alter table ops.import_guest_rows enable row level security;
alter table ops.import_guest_rows force row level security;

-- the importer, and the organization's members (vendor portal) or the wedding's couple
create policy imports_select on ops.imports for select to authenticated
    using (
        actor = (select wedsync.current_user_id())
        or (kind = 'clients' and (select wedsync.current_audience()) = 'vendor'
            and organization_id in (select wedsync.user_organization_ids()))
        or (kind = 'guests' and (select wedsync.current_audience()) = 'couple'
            and wedding_id in (select wedsync.user_wedding_ids()))
    );
-- an import is opened by a user who may write that organization's clients or wedding's guests
create policy imports_insert on ops.imports for insert to authenticated
    with check (
        actor = (select wedsync.current_user_id())
        and status = 'staging'
        and ((kind = 'clients' and (select wedsync.current_audience()) = 'vendor'
              and organization_id in (select wedsync.user_organization_ids()))
             or (kind = 'guests' and (select wedsync.current_audience()) = 'couple'
                 and wedding_id in (select wedsync.user_wedding_ids())))
    );
create policy imports_update on ops.imports for update to authenticated
    using (actor = (select wedsync.current_user_id()) and status = 'staging')
    with check (actor = (select wedsync.current_user_id()));

create policy import_errors_select on ops.import_errors for select to authenticated
    using (import_id in (select i.id from ops.imports i));
create policy import_errors_insert on ops.import_errors for insert to authenticated
    with check (
        import_id in (select i.id from ops.imports i
                      where i.actor = (select wedsync.current_user_id())
                        and i.status = 'staging')
    );

create policy import_client_rows_select on ops.import_client_rows for select to authenticated
    using (actor = (select wedsync.current_user_id()));
create policy import_client_rows_delete on ops.import_client_rows for delete to authenticated
    using (actor = (select wedsync.current_user_id()));
create policy import_guest_rows_select on ops.import_guest_rows for select to authenticated
    using (actor = (select wedsync.current_user_id()));
create policy import_guest_rows_delete on ops.import_guest_rows for delete to authenticated
    using (actor = (select wedsync.current_user_id()));

revoke all on ops.imports, ops.import_errors, ops.import_client_rows, ops.import_guest_rows
    from public, anon;
grant select, insert, update on ops.imports to authenticated;
grant select, insert on ops.import_errors to authenticated;
grant select, delete on ops.import_client_rows, ops.import_guest_rows to authenticated;
grant select, insert, update, delete
    on ops.imports, ops.import_errors, ops.import_client_rows, ops.import_guest_rows
    to service_role;

-- --- values as the CRM exports spell them -------------------------------------------------------
-- Plain SQL functions that qualify every name, without a SET clause, so that the planner
-- inlines them into the import's statements (a SET would cost a call per row).
-- a client status from the words CRMs use (NULL: not one of them)
create function ops.import_client_status(value text) returns text
    language sql immutable parallel safe
as $$
    select case pg_catalog.lower(pg_catalog.btrim(value))
        when 'lead' then 'lead' when 'enquiry' then 'lead' when 'inquiry' then 'lead'
        when 'prospect' then 'lead' when 'new' then 'lead' when 'open' then 'lead'
        when 'booked' then 'booked' when 'confirmed' then 'booked' when 'won' then 'booked'
        when 'contracted' then 'booked' when 'signed' then 'booked'
        when 'completed' then 'completed' when 'complete' then 'completed'
        when 'done' then 'completed' when 'delivered' then 'completed'
        when 'cancelled' then 'cancelled' when 'canceled' then 'cancelled'
        when 'lost' then 'cancelled' when 'closed lost' then 'cancelled'
    end
$$;

-- an RSVP answer from the words guest lists use (NULL: not one of them)
create function ops.import_rsvp(value text) returns text
    language sql immutable parallel safe
as $$
    select case pg_catalog.lower(pg_catalog.btrim(value))
        when 'pending' then 'pending' when 'invited' then 'pending' when 'awaiting' then 'pending'
        when 'no response' then 'pending' when 'not yet' then 'pending'
        when 'accepted' then 'accepted' when 'accept' then 'accepted' when 'yes' then 'accepted'
        when 'y' then 'accepted' when 'attending' then 'accepted' when 'coming' then 'accepted'
        when 'confirmed' then 'accepted'
        when 'declined' then 'declined' when 'decline' then 'declined' when 'no' then 'declined'
        when 'n' then 'declined' when 'not attending' then 'declined'
        when 'regrets' then 'declined'
        when 'maybe' then 'maybe' when 'tentative' then 'maybe' when 'unsure' then 'maybe'
    end
$$;

-- a yes / no cell (NULL: neither)
create function ops.import_flag(value text) returns boolean
    language sql immutable parallel safe
as $$
    select case pg_catalog.lower(pg_catalog.btrim(value))
        when 'yes' then true when 'y' then true when 'true' then true when '1' then true
        when 'x' then true
        when 'no' then false when 'n' then false when 'false' then false when '0' then false
    end
$$;

-- dietary requirements from one cell: a list split on ; , / or |, trimmed, empties dropped
create function ops.import_dietary(value text) returns text[]
    language sql immutable parallel safe
as $$
    select coalesce(pg_catalog.array_agg(pg_catalog.btrim(d) order by n), '{}')
    from pg_catalog.regexp_split_to_table(coalesce(value, ''), '[;,/|]') with ordinality r (d, n)
    where pg_catalog.btrim(d) <> ''
$$;

revoke execute on function ops.import_client_status(text), ops.import_rsvp(text),
    ops.import_flag(text), ops.import_dietary(text) from public;
grant execute on function ops.import_client_status(text), ops.import_rsvp(text),
    ops.import_flag(text), ops.import_dietary(text) to authenticated, service_role;

-- --- plan room ----------------------------------------------------------------------------------
-- What an import may still add: the target's usage now and its maximum (NULL: unlimited), for a
-- user who may write that organization's clients (vendor) or wedding's guests (couple); no row
-- for anyone else. Counted before anything is written; the usage triggers still decide.
create function wedsync.import_room(kind text, target uuid)
    returns table (current_usage integer, maximum integer)
    language plpgsql stable security definer
    set search_path = pg_catalog, pg_temp
as $$
begin
    if kind operator(pg_catalog.=) 'clients' then
        if wedsync.current_audience() operator(pg_catalog.=) 'vendor'
           and target in (select wedsync.user_organization_ids()) then
            return query
                select coalesce((select u.clients from public.organization_usage u
                                 where u.organization_id operator(pg_catalog.=) target), 0),
                       wedsync.organization_limit(target, 'clients');
        end if;
    elsif kind operator(pg_catalog.=) 'guests' then
        if wedsync.current_audience() operator(pg_catalog.=) 'couple'
           and target in (select wedsync.user_wedding_ids()) then
            return query
                select coalesce((select u.guests from public.wedding_usage u
                                 where u.wedding_id operator(pg_catalog.=) target), 0),
                       wedsync.wedding_guest_limit(target);
        end if;
    end if;
end
$$;

do $$
begin
    execute pg_catalog.format('alter function wedsync.import_room(text, uuid) owner to %I',
                              wedsync.policy_owner());
end
$$;
revoke execute on function wedsync.import_room(text, uuid) from public, anon;
grant execute on function wedsync.import_room(text, uuid) to authenticated, service_role;
