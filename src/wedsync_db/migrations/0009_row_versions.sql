-- Optimistic concurrency on every mutable row: a `version` that starts at 1 and goes up by one
-- only when an update really changes the row's data. The caller never chooses it: an insert
-- starts at 1 whatever it says, an update keeps the old version unless a data column changed.
-- Updates of unchanged rows keep updated_at too, so a no-op write is invisible to readers.
--
-- Adding a column with a constant default is a catalog-only change (no table rewrite); each
-- ALTER takes a brief ACCESS EXCLUSIVE lock on its table.

alter table organizations add column version integer not null default 1;
alter table organization_members add column version integer not null default 1;
alter table clients add column version integer not null default 1;
alter table weddings add column version integer not null default 1;
alter table wedding_members add column version integer not null default 1;
alter table wedding_vendors add column version integer not null default 1;

-- tg_argv[0] = 'updated_at' when the table has that column (it moves with the version)
create or replace function wedsync.touch_row() returns trigger
    language plpgsql
    set search_path = pg_catalog, pg_temp
as $$
declare
    stamped boolean := tg_nargs operator(pg_catalog.>) 0
        and tg_argv[0] operator(pg_catalog.=) 'updated_at';
begin
    if tg_op = 'INSERT' then
        new.version := 1;
        return new;
    end if;
    new.version := old.version;
    if stamped then
        new.updated_at := old.updated_at;
    end if;
    if new is distinct from old then
        new.version := old.version operator(pg_catalog.+) 1;
        if stamped then
            new.updated_at := pg_catalog.now();
        end if;
    end if;
    return new;
end
$$;

drop trigger guests_touch on guests;
drop trigger clients_touch on clients;
drop trigger organizations_touch on organizations;
drop trigger weddings_touch on weddings;
-- named to fire after every other BEFORE trigger of its table (they fire in name order), so
-- what wedsync.guard_vendor_link() sets counts as a change
create trigger zz_version before insert or update on guests
    for each row execute function wedsync.touch_row('updated_at');
create trigger zz_version before insert or update on clients
    for each row execute function wedsync.touch_row('updated_at');
create trigger zz_version before insert or update on organizations
    for each row execute function wedsync.touch_row('updated_at');
create trigger zz_version before insert or update on weddings
    for each row execute function wedsync.touch_row('updated_at');
create trigger zz_version before insert or update on organization_members
    for each row execute function wedsync.touch_row();
create trigger zz_version before insert or update on wedding_members
    for each row execute function wedsync.touch_row();
create trigger zz_version before insert or update on wedding_vendors
    for each row execute function wedsync.touch_row();
