-- The live change feed: a transactional outbox written by statement-level triggers on guests,
-- weddings, wedding_members, wedding_vendors and clients, in the same transaction as the change.
--
-- * One stream per tenant: a wedding's id for guests, the wedding itself, its members and its
--   vendor links; an organization's id for its clients. Each change gets the next number of its
--   stream (feed.changes.seq) from the stream's head row (feed.heads), updated by the trigger: the
--   head's row lock is held until the writing transaction ends, so within a stream the numbers
--   follow commit order and a reader that has seen change N of a stream will never later find a
--   change below N appear. Writers of one stream therefore commit one after another from their
--   first feed write on (the guest counters of 0008 already serialise guest inserts per wedding);
--   writers of different streams never wait for each other.
-- * Every change also keeps the writing transaction's id (xid8) and the clock at the write, for
--   diagnosis and for the reader's commit watermark (pg_snapshot_xmin) in health.
-- * A change holds what happened (entity, operation, primary key, changed columns, the row's new
--   version) and the tenant keys, never the row's data: readers fetch rows through their own
--   scope, so column visibility stays the tables' business.
-- * RLS on feed.changes applies the tables' own select rules to the tenant keys stored in the
--   change, evaluated when the change is read: a deleted row's change is visible to those who
--   could see the row, and a vendor whose guest access is revoked stops seeing guest changes at
--   once. Statement-level triggers with transition tables: a bulk write costs one head update
--   per stream and one insert statement.
-- * A NOTIFY on channel wedsync_feed (empty payload, so one per transaction) wakes listeners;
--   it is only a wake-up: readers poll the heads as well.
--
-- Upgrading takes brief SHARE ROW EXCLUSIVE locks on the five tables to create the triggers.

create schema feed;

create table feed.heads (
    stream uuid primary key,
    -- the last change number given in this stream
    seq bigint not null,
    -- changes up to this number have been pruned (a cursor below it must resync)
    pruned_through bigint not null default 0,
    updated_at timestamptz not null default now()
);

create table feed.changes (
    stream uuid not null,
    seq bigint not null,
    entity text not null
        check (entity in ('guest', 'wedding', 'wedding_member', 'vendor_link', 'client')),
    op text not null check (op in ('insert', 'update', 'delete')),
    -- the primary key of the changed row, column by column
    key jsonb not null,
    -- the columns an update changed (version and updated_at left out); NULL otherwise
    changed text[],
    wedding_id uuid,
    organization_id uuid,
    -- the row's version after the change (before it, for a delete)
    version integer,
    xid xid8 not null default pg_current_xact_id(),
    changed_at timestamptz not null default clock_timestamp(),
    primary key (stream, seq)
);
-- pruning by age, and the oldest / newest change in health
create index changes_changed_at_idx on feed.changes (changed_at);

alter table feed.heads enable row level security;
alter table feed.heads force row level security;
alter table feed.changes enable row level security;
alter table feed.changes force row level security;

-- the tables' select rules, on the tenant keys kept in the change
create policy changes_select on feed.changes for select to authenticated
    using (
        (entity = 'guest' and wedding_id in (select wedsync.guest_wedding_ids()))
        or (entity = 'wedding'
            and (wedding_id in (select wedsync.user_wedding_ids())
                 or wedding_id in (select wedsync.vendor_wedding_ids())))
        or (entity = 'wedding_member' and wedding_id in (select wedsync.user_wedding_ids()))
        or (entity = 'vendor_link'
            and (wedding_id in (select wedsync.user_wedding_ids())
                 or organization_id in (select wedsync.user_organization_ids())))
        or (entity = 'client' and organization_id in (select wedsync.vendor_organization_ids()))
    );

revoke all on schema feed from public;
grant usage on schema feed to authenticated, service_role;
revoke all on feed.heads, feed.changes from public, anon, authenticated;
grant select on feed.changes to authenticated;
grant select, insert, update, delete on feed.heads, feed.changes to service_role;

-- --- recording ----------------------------------------------------------------------------------
-- Statement-level AFTER trigger. TG_ARGV: entity, stream column, primary key columns
-- (comma-separated), wedding id column ('' if none), organization id column ('' if none).
create function feed.record_changes() returns trigger
    language plpgsql security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    entity text := tg_argv[0];
    stream_column text := tg_argv[1];
    key_columns text[] := pg_catalog.string_to_array(tg_argv[2], ',');
    wedding_column text := nullif(tg_argv[3], '');
    organization_column text := nullif(tg_argv[4], '');
    first_key text := key_columns[1];
    -- the tenant key expressions of a row of new_rows (n) and old_rows (o)
    wedding_n text := case when wedding_column is null then 'null::uuid'
                           else pg_catalog.format('n.%I', wedding_column) end;
    wedding_o text := case when wedding_column is null then 'null::uuid'
                           else pg_catalog.format('o.%I', wedding_column) end;
    organization_n text := case when organization_column is null then 'null::uuid'
                                else pg_catalog.format('n.%I', organization_column) end;
    organization_o text := case when organization_column is null then 'null::uuid'
                                else pg_catalog.format('o.%I', organization_column) end;
    key_n text;
    key_o text;
    matched text;
    rows_sql text;
    written bigint;
begin
    select 'pg_catalog.jsonb_build_object(' || pg_catalog.string_agg(
               pg_catalog.format('%L, n.%I', k, k), ', ') || ')',
           'pg_catalog.jsonb_build_object(' || pg_catalog.string_agg(
               pg_catalog.format('%L, o.%I', k, k), ', ') || ')',
           pg_catalog.string_agg(pg_catalog.format('n.%1$I = o.%1$I', k), ' and ')
      into key_n, key_o, matched
    from pg_catalog.unnest(key_columns) k;

    if tg_op = 'INSERT' then
        rows_sql := pg_catalog.format(
            'select n.%I as stream, ''insert''::text as op, %s as key, null::text[] as changed, '
            '%s as wedding_id, %s as organization_id, n.version from new_rows n',
            stream_column, key_n, wedding_n, organization_n);
    elsif tg_op = 'DELETE' then
        rows_sql := pg_catalog.format(
            'select o.%I as stream, ''delete''::text as op, %s as key, null::text[] as changed, '
            '%s as wedding_id, %s as organization_id, o.version from old_rows o',
            stream_column, key_o, wedding_o, organization_o);
    else
        -- a row whose primary key changed shows as a delete and an insert
        rows_sql := pg_catalog.format(
            'select * from (select '
            'case when o.%2$I is null then n.%1$I else o.%1$I end as stream, '
            'case when o.%2$I is null then ''insert'' when n.%2$I is null then ''delete'' '
            '     else ''update'' end::text as op, '
            'case when n.%2$I is null then %4$s else %3$s end as key, '
            'case when o.%2$I is not null and n.%2$I is not null then array('
            '  select e.key from pg_catalog.jsonb_each(pg_catalog.to_jsonb(n)) e '
            '  where e.value is distinct from pg_catalog.to_jsonb(o) operator(pg_catalog.->) e.key '
            '    and e.key operator(pg_catalog.<>) all (array[''version'', ''updated_at'']) '
            '  order by e.key) end as changed, '
            '%5$s as wedding_id, %6$s as organization_id, '
            'case when n.%2$I is null then o.version else n.version end as version '
            'from new_rows n full join old_rows o on %7$s) r '
            'where r.changed is null or pg_catalog.cardinality(r.changed) operator(pg_catalog.>) 0',
            stream_column, first_key, key_n, key_o,
            pg_catalog.format('coalesce(%s, %s)', wedding_n, wedding_o),
            pg_catalog.format('coalesce(%s, %s)', organization_n, organization_o),
            matched);
    end if;

    execute pg_catalog.format(
        'with r as (%s), '
        'numbered as ('
        '  select r.*, pg_catalog.row_number() over (partition by r.stream order by r.key::text) '
        '         as pos, pg_catalog.count(*) over (partition by r.stream) as n from r), '
        'heads as ('
        '  insert into feed.heads as h (stream, seq) '
        '  select x.stream, pg_catalog.max(x.n) from numbered x group by x.stream order by x.stream '
        '  on conflict (stream) do update set seq = h.seq operator(pg_catalog.+) excluded.seq, '
        '      updated_at = pg_catalog.now() '
        '  returning h.stream, h.seq) '
        'insert into feed.changes '
        '    (stream, seq, entity, op, key, changed, wedding_id, organization_id, version) '
        'select x.stream, h.seq operator(pg_catalog.-) x.n operator(pg_catalog.+) x.pos, $1, '
        '       x.op, x.key, x.changed, x.wedding_id, x.organization_id, x.version '
        'from numbered x join heads h on h.stream operator(pg_catalog.=) x.stream',
        rows_sql)
        using entity;
    get diagnostics written = row_count;
    if written operator(pg_catalog.>) 0 then
        perform pg_catalog.pg_notify('wedsync_feed', '');
    end if;
    return null;
end
$$;

create trigger guests_feed_insert after insert on guests
    referencing new table as new_rows for each statement
    execute function feed.record_changes('guest', 'wedding_id', 'wedding_id,id', 'wedding_id', '');
create trigger guests_feed_update after update on guests
    referencing old table as old_rows new table as new_rows for each statement
    execute function feed.record_changes('guest', 'wedding_id', 'wedding_id,id', 'wedding_id', '');
create trigger guests_feed_delete after delete on guests
    referencing old table as old_rows for each statement
    execute function feed.record_changes('guest', 'wedding_id', 'wedding_id,id', 'wedding_id', '');

create trigger weddings_feed_insert after insert on weddings
    referencing new table as new_rows for each statement
    execute function feed.record_changes('wedding', 'id', 'id', 'id', '');
create trigger weddings_feed_update after update on weddings
    referencing old table as old_rows new table as new_rows for each statement
    execute function feed.record_changes('wedding', 'id', 'id', 'id', '');
create trigger weddings_feed_delete after delete on weddings
    referencing old table as old_rows for each statement
    execute function feed.record_changes('wedding', 'id', 'id', 'id', '');

create trigger wedding_members_feed_insert after insert on wedding_members
    referencing new table as new_rows for each statement
    execute function feed.record_changes(
        'wedding_member', 'wedding_id', 'wedding_id,user_id', 'wedding_id', '');
create trigger wedding_members_feed_update after update on wedding_members
    referencing old table as old_rows new table as new_rows for each statement
    execute function feed.record_changes(
        'wedding_member', 'wedding_id', 'wedding_id,user_id', 'wedding_id', '');
create trigger wedding_members_feed_delete after delete on wedding_members
    referencing old table as old_rows for each statement
    execute function feed.record_changes(
        'wedding_member', 'wedding_id', 'wedding_id,user_id', 'wedding_id', '');

create trigger wedding_vendors_feed_insert after insert on wedding_vendors
    referencing new table as new_rows for each statement
    execute function feed.record_changes(
        'vendor_link', 'wedding_id', 'wedding_id,organization_id', 'wedding_id',
        'organization_id');
create trigger wedding_vendors_feed_update after update on wedding_vendors
    referencing old table as old_rows new table as new_rows for each statement
    execute function feed.record_changes(
        'vendor_link', 'wedding_id', 'wedding_id,organization_id', 'wedding_id',
        'organization_id');
create trigger wedding_vendors_feed_delete after delete on wedding_vendors
    referencing old table as old_rows for each statement
    execute function feed.record_changes(
        'vendor_link', 'wedding_id', 'wedding_id,organization_id', 'wedding_id',
        'organization_id');

create trigger clients_feed_insert after insert on clients
    referencing new table as new_rows for each statement
    execute function feed.record_changes(
        'client', 'organization_id', 'organization_id,id', '', 'organization_id');
create trigger clients_feed_update after update on clients
    referencing old table as old_rows new table as new_rows for each statement
    execute function feed.record_changes(
        'client', 'organization_id', 'organization_id,id', '', 'organization_id');
create trigger clients_feed_delete after delete on clients
    referencing old table as old_rows for each statement
    execute function feed.record_changes(
        'client', 'organization_id', 'organization_id,id', '', 'organization_id');

-- --- reading ----------------------------------------------------------------------------------
-- What the current claims may see of one stream, as a key: subscribers whose keys are equal see
-- exactly the same changes of that stream (the key spells out every arm of changes_select), so
-- a reader serves them with one query. '' means nothing.
create function feed.access_key(stream uuid) returns text
    language sql stable
    set search_path = pg_catalog, pg_temp
as $$
    -- each membership helper runs once
    select pg_catalog.concat_ws(',',
        case when a.guests then 'guests' end,
        case when a.member or a.vendor then 'wedding' end,
        case when a.member then 'members' end,
        case when a.member then 'links'
             else (select 'links:' || pg_catalog.string_agg(o::text, ' ' order by o)
                   from wedsync.user_organization_ids() o)
        end,
        case when a.clients then 'clients' end)
    from (select stream in (select wedsync.guest_wedding_ids()) as guests,
                 stream in (select wedsync.user_wedding_ids()) as member,
                 stream in (select wedsync.vendor_wedding_ids()) as vendor,
                 stream in (select wedsync.vendor_organization_ids()) as clients) a
$$;

-- The access keys of many subscribers at once (service code only): for each i, the key of
-- (users[i], auds[i]) on streams[i], computed by feed.access_key under that user's claims, signed
-- as the clients sign them, so the answer is what the user's own scope would compute now.
create function feed.access_keys(streams uuid[], users uuid[], auds text[])
returns table (stream uuid, user_id uuid, aud text, key text)
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
as $$
declare
    saved_claims text := pg_catalog.current_setting('request.jwt.claims', true);
    saved_signature text := pg_catalog.current_setting('wedsync.claims_signature', true);
    pads record;
    signed boolean;
    claims text;
begin
    if pg_catalog.cardinality(streams) operator(pg_catalog.<>) pg_catalog.cardinality(users)
       or pg_catalog.cardinality(users) operator(pg_catalog.<>) pg_catalog.cardinality(auds) then
        raise exception 'streams, users and auds must have the same length'
            using errcode = 'invalid_parameter_value';
    end if;
    select inner_pad, outer_pad into pads from wedsync.claims_signing_key where id;
    signed := found;
    for i in 1 .. coalesce(pg_catalog.cardinality(users), 0) loop
        claims := pg_catalog.json_build_object(
            'sub', users[i], 'aud', auds[i], 'role', 'authenticated')::text;
        perform pg_catalog.set_config('request.jwt.claims', claims, true);
        perform pg_catalog.set_config('wedsync.claims_signature',
            case when signed then pg_catalog.encode(pg_catalog.sha256(
                pads.outer_pad operator(pg_catalog.||) pg_catalog.sha256(
                    pads.inner_pad operator(pg_catalog.||) pg_catalog.convert_to(claims, 'UTF8'))),
                'hex') else '' end,
            true);
        stream := streams[i];
        user_id := users[i];
        aud := auds[i];
        key := feed.access_key(streams[i]);
        return next;
    end loop;
    perform pg_catalog.set_config('request.jwt.claims', coalesce(saved_claims, ''), true);
    perform pg_catalog.set_config('wedsync.claims_signature', coalesce(saved_signature, ''), true);
end
$$;

-- Delete the changes recorded before ``before``; the heads remember how far each stream was
-- pruned, so a reader with an older cursor is told to resync. Returns the changes deleted.
create function feed.prune(before timestamptz) returns bigint
    language plpgsql volatile
    set search_path = pg_catalog, pg_temp
as $$
declare
    deleted bigint;
begin
    with gone as (
        delete from feed.changes c where c.changed_at operator(pg_catalog.<) before
        returning c.stream, c.seq
    ),
    marks as (
        select g.stream, pg_catalog.max(g.seq) as seq, pg_catalog.count(*) as n
        from gone g group by g.stream
    ),
    moved as (
        update feed.heads h set pruned_through = greatest(h.pruned_through, m.seq)
        from marks m where h.stream operator(pg_catalog.=) m.stream
        returning m.n
    )
    select coalesce(pg_catalog.sum(n), 0)::bigint into deleted from moved;
    return deleted;
end
$$;

-- --- ownership and EXECUTE ---------------------------------------------------------------------
do $$
declare
    owner name := wedsync.policy_owner();
begin
    execute pg_catalog.format('grant usage on schema feed to %I', owner);
    execute pg_catalog.format(
        'grant select, insert, update on feed.heads, feed.changes to %I', owner);
    execute pg_catalog.format('grant create on schema feed to %I', owner);
    execute pg_catalog.format('alter function feed.record_changes() owner to %I', owner);
    execute pg_catalog.format(
        'alter function feed.access_keys(uuid[], uuid[], text[]) owner to %I', owner);
    if owner operator(pg_catalog.<>) 'service_role' then
        execute pg_catalog.format('revoke create on schema feed from %I', owner);
    end if;
    execute pg_catalog.format('grant execute on function feed.access_key(uuid) to %I', owner);
end
$$;
revoke execute on all functions in schema feed from public, anon;
grant execute on function feed.access_key(uuid) to authenticated, service_role;
grant execute on function feed.access_keys(uuid[], uuid[], text[]), feed.prune(timestamptz)
    to service_role;
