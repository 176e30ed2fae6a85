-- Statements of the bulk import (migration 0010). Minimum server version: PostgreSQL 15.
-- Every statement runs in the importing user's scope (RLS decides) unless it says "service".
-- {client_valid}, {client_matches}, {client_next} (and the guest ones) are the fragments below,
-- pasted in by name (trusted text), or by short name ({valid} …) in a statement shared by both
-- kinds; values are always bound parameters.

-- name: organization_timezone
-- the timezone of an organization the user sees (its datetimes are read there)
select timezone from public.organizations where id = %s

-- name: wedding_timezone
-- the timezone of a wedding the user sees
select timezone from public.weddings where id = %s

-- name: earlier_import
-- the finished import of the same file with the same options into the same target
select id from ops.imports
where kind = %(kind)s
  and (organization_id = %(target)s or wedding_id = %(target)s)
  and file_sha256 = %(sha256)s and options_key = %(options_key)s and status = 'imported'
order by created_at desc
limit 1

-- name: open_import
-- a new import by the current user (RLS refuses a target the user may not write)
insert into ops.imports (kind, organization_id, wedding_id, file_name, file_sha256, file_bytes,
                         options, options_key, format)
values (%(kind)s, %(organization)s, %(wedding)s, %(file_name)s, %(sha256)s, %(size)s,
        %(options)s, %(options_key)s, %(format)s)
returning id

-- name: stage_settings
-- service: stamp the staged rows of this COPY's transaction with the import and its actor
select pg_catalog.set_config('wedsync.import_id', i.id::text, true),
       pg_catalog.set_config('wedsync.import_actor', i.actor::text, true)
from ops.imports i
where i.id = %s and i.status = 'staging'

-- name: write_settings
-- the writing transaction sorts and hashes every staged row: the memory to do it without
-- spilling to disk (for this transaction only)
select pg_catalog.set_config('work_mem', '64MB', true)

-- name: write_rows
-- the changed matched rows updated and the new rows inserted, in one statement: the staged rows
-- are read and matched once; returns (updated, inserted). For either kind: its fragments are
-- pasted in by their short names
with valid as ({valid}),
     matched as ({matches}),
     next as ({next}),
     updated as ({update}
                 returning 1),
     inserted as ({insert}
                  returning 1)
select (select pg_catalog.count(*) from updated)::integer,
       (select pg_catalog.count(*) from inserted)::integer

-- name: import_room
-- what the target's plan still allows: usage now and the maximum (NULL: unlimited)
select current_usage, maximum from wedsync.import_room(%s, %s)

-- name: error_summary
-- errors found so far, and the lines they are on
select pg_catalog.count(*)::integer, pg_catalog.count(distinct line)::integer
from ops.import_errors where import_id = %s

-- name: finish_import
-- the import's outcome and counts
update ops.imports
set status = %(status)s, rows = %(rows)s, inserted = %(inserted)s, updated = %(updated)s,
    unchanged = %(unchanged)s, skipped = %(skipped)s, error_count = %(error_count)s,
    message = %(message)s, finished_at = pg_catalog.now()
where id = %(import)s

-- name: abandon_import
-- service: an import that stopped on an error is failed, with the error as its message
update ops.imports
set status = 'failed', message = %s, finished_at = pg_catalog.now()
where id = %s and status = 'staging'

-- name: forget_import
-- service: a dry run leaves nothing behind (its errors go with it)
delete from ops.imports where id = %s

-- name: abandon_stale_imports
-- service: imports still staging long after they began (the importing process stopped) are
-- failed, and their staged rows go; returns how many imports
with stale as (
    update ops.imports
    set status = 'failed', finished_at = pg_catalog.now(),
        message = 'abandoned: the import stopped before it finished (nothing was written)'
    where status = 'staging' and created_at < %(before)s
    returning id
),
staged_clients as (
    delete from ops.import_client_rows r using stale where r.import_id = stale.id
),
staged_guests as (
    delete from ops.import_guest_rows r using stale where r.import_id = stale.id
)
select pg_catalog.count(*)::integer from stale

-- name: prune_import_errors
-- service: the row errors of imports finished before the history retention (their reports,
-- with the counts, stay); returns how many errors
with gone as (
    delete from ops.import_errors e
    using ops.imports i
    where i.id = e.import_id and i.finished_at < %(before)s
    returning 1
)
select pg_catalog.count(*)::integer from gone

-- name: clear_client_rows
-- the import's staged client rows, once used
delete from ops.import_client_rows where import_id = %s

-- name: clear_guest_rows
-- the import's staged guest rows, once used
delete from ops.import_guest_rows where import_id = %s

-- name: get_import
-- one import the user sees, of this kind and target
select id, kind, organization_id, wedding_id, actor, created_at, finished_at, file_name,
       file_sha256, file_bytes, options, status, rows, inserted, updated, unchanged, skipped,
       error_count, message, format
from ops.imports
where id = %(import)s and kind = %(kind)s
  and (organization_id = %(target)s or wedding_id = %(target)s)

-- name: import_errors
-- a page of an import's errors in (line, field) order after a cursor
select line, field, value, reason
from ops.import_errors
where import_id = %s and (line, field) > (%s, %s)
order by line, field
limit %s

-- === clients ====================================================================================

-- name: client_valid
-- fragment: the import's staged client rows without an error
select s.* from ops.import_client_rows s
where s.import_id = %(import)s and s.bad_reason is null
  and not exists (select 1 from ops.import_errors e
                  where e.import_id = s.import_id and e.line = s.line)

-- name: client_matches
-- fragment: per valid row, the existing clients it names: by external_ref, else by email (of a
-- client without another ref), else by the partners' names; the first kind that finds any
select distinct on (line) line, ids
from (
    select v.line, 1 as priority, pg_catalog.array_agg(c.id) as ids
    from valid v
    join public.clients c on c.organization_id = %(target)s and c.external_ref = v.external_ref
    where v.external_ref is not null
    group by v.line
    union all
    select v.line, 2, pg_catalog.array_agg(c.id)
    from valid v
    join public.clients c
      on c.organization_id = %(target)s
     and pg_catalog.lower(pg_catalog.btrim(c.email)) = pg_catalog.lower(v.email)
    where v.email is not null and (v.external_ref is null or c.external_ref is null)
    group by v.line
    union all
    select v.line, 3, pg_catalog.array_agg(c.id)
    from valid v
    join public.clients c
      on c.organization_id = %(target)s
     and pg_catalog.lower(c.partner1_name) = pg_catalog.lower(v.partner1_name)
     and coalesce(pg_catalog.lower(c.partner2_name), '')
         = coalesce(pg_catalog.lower(v.partner2_name), '')
    where v.email is null and v.external_ref is null and c.external_ref is null
    group by v.line
) m
order by line, priority

-- name: client_next
-- fragment: each matched client as the file would leave it (fields the file lacks are kept;
-- the keys and the status are never cleared by an empty cell)
select c.id,
       v.partner1_name,
       case when 'partner2_name' = any (%(fields)s::text[]) then v.partner2_name
            else c.partner2_name end as partner2_name,
       coalesce(v.email, c.email) as email,
       case when 'phone' = any (%(fields)s::text[]) then v.phone else c.phone end as phone,
       case when 'wedding_date' = any (%(fields)s::text[]) then v.wedding_date::date
            else c.wedding_date end as wedding_date,
       case when 'venue' = any (%(fields)s::text[]) then v.venue else c.venue end as venue,
       coalesce(ops.import_client_status(v.status), c.status) as status,
       coalesce(v.external_ref, c.external_ref) as external_ref,
       case when 'notes' = any (%(fields)s::text[]) then v.notes else c.notes end as notes,
       (c.partner1_name, c.partner2_name, c.email, c.phone, c.wedding_date, c.venue, c.status,
        c.external_ref, c.notes) as old
from valid v
join matched m on m.line = v.line and pg_catalog.cardinality(m.ids) = 1
join public.clients c on c.organization_id = %(target)s and c.id = m.ids[1]

-- name: client_errors
-- the rows' errors: what reading found, then what the values are
insert into ops.import_errors (import_id, line, field, value, reason)
select s.import_id, s.line, e.field, pg_catalog.left(e.value, 80), e.reason
from ops.import_client_rows s
cross join lateral (values
    (s.bad_field, s.bad_value, s.bad_reason),
    ('partner1_name', s.partner1_name,
     case when s.bad_reason is null and s.partner1_name is null
          then 'a name is required (partner1_name)' end),
    ('email', s.email,
     case when s.bad_reason is null
               and (s.email not like '%%_@_%%._%%' or pg_catalog.strpos(s.email, ' ') > 0)
          then 'not an email address' end),
    ('status', s.status,
     case when s.bad_reason is null and s.status is not null
               and ops.import_client_status(s.status) is null
          then 'not a client status (lead, booked, completed, cancelled)' end)
) as e (field, value, reason)
where s.import_id = %(import)s and e.reason is not null
  -- only rows with a problem reach the lateral list (most rows have none)
  and (s.bad_reason is not null or s.partner1_name is null
       or s.email not like '%%_@_%%._%%' or pg_catalog.strpos(s.email, ' ') > 0
       or ops.import_client_status(s.status) is null and s.status is not null)
on conflict do nothing

-- name: client_conflicts
-- rows naming the same client as an earlier row, and rows matching several existing clients
with valid as ({client_valid}),
     matched as ({client_matches}),
     keyed as (
         select v.line,
                case when v.external_ref is not null then 'external_ref'
                     when v.email is not null then 'email' else 'partner1_name' end as field,
                coalesce(v.external_ref, v.email, v.partner1_name) as value,
                pg_catalog.min(v.line) over (partition by
                    case when v.external_ref is not null then 'r:' || v.external_ref
                         when v.email is not null then 'e:' || pg_catalog.lower(v.email)
                         else 'n:' || pg_catalog.lower(v.partner1_name) || '|'
                              || coalesce(pg_catalog.lower(v.partner2_name), '') end) as first
         from valid v
     )
insert into ops.import_errors (import_id, line, field, value, reason)
select %(import)s, k.line, k.field, pg_catalog.left(k.value, 80),
       pg_catalog.format('the same client as line %%s', k.first)
from keyed k where k.line <> k.first
union all
select %(import)s, m.line, 'email', null,
       pg_catalog.format('matches %%s existing clients; add an external_ref column to tell '
                         'them apart', pg_catalog.cardinality(m.ids))
from matched m where pg_catalog.cardinality(m.ids) > 1
on conflict do nothing

-- name: client_counts
-- what writing would do: rows to add, rows matched, matched rows the file changes
with valid as ({client_valid}),
     matched as ({client_matches}),
     next as ({client_next})
select (select pg_catalog.count(*) from valid v
        where not exists (select 1 from matched m where m.line = v.line))::integer,
       (select pg_catalog.count(*) from next)::integer,
       (select pg_catalog.count(*) from next n
        where n.old is distinct from (n.partner1_name, n.partner2_name, n.email, n.phone,
                                      n.wedding_date, n.venue, n.status, n.external_ref,
                                      n.notes))::integer

-- name: client_update
-- fragment: matched clients the file changes (an unchanged row is not touched: its version
-- stays)
update public.clients c
set (partner1_name, partner2_name, email, phone, wedding_date, venue, status, external_ref,
     notes)
  = (n.partner1_name, n.partner2_name, n.email, n.phone, n.wedding_date, n.venue, n.status,
     n.external_ref, n.notes)
from next n
where c.organization_id = %(target)s and c.id = n.id
  and n.old is distinct from (n.partner1_name, n.partner2_name, n.email, n.phone,
                              n.wedding_date, n.venue, n.status, n.external_ref, n.notes)

-- name: client_insert
-- fragment: rows that name no existing client
insert into public.clients (organization_id, partner1_name, partner2_name, email, phone,
                            wedding_date, venue, status, external_ref, notes)
select %(target)s, v.partner1_name, v.partner2_name, v.email, v.phone, v.wedding_date::date,
       v.venue, coalesce(ops.import_client_status(v.status), 'lead'), v.external_ref, v.notes
from valid v
where not exists (select 1 from matched m where m.line = v.line)
order by v.line

-- === guests =====================================================================================

-- name: guest_valid
-- fragment: the import's staged guest rows without an error
select s.* from ops.import_guest_rows s
where s.import_id = %(import)s and s.bad_reason is null
  and not exists (select 1 from ops.import_errors e
                  where e.import_id = s.import_id and e.line = s.line)

-- name: guest_matches
-- fragment: per valid row, the existing guests it names: by email, else (without an email)
-- by first and last name
select distinct on (line) line, ids
from (
    select v.line, 1 as priority, pg_catalog.array_agg(g.id) as ids
    from valid v
    join public.guests g
      on g.wedding_id = %(target)s
     and pg_catalog.lower(pg_catalog.btrim(g.email)) = pg_catalog.lower(v.email)
    where v.email is not null
    group by v.line
    union all
    select v.line, 2, pg_catalog.array_agg(g.id)
    from valid v
    join public.guests g
      on g.wedding_id = %(target)s
     and pg_catalog.lower(g.first_name) = pg_catalog.lower(v.first_name)
     and coalesce(pg_catalog.lower(g.last_name), '') = coalesce(pg_catalog.lower(v.last_name), '')
    where v.email is null
    group by v.line
) m
order by line, priority

-- name: guest_next
-- fragment: each matched guest as the file would leave it (fields the file lacks are kept; the
-- email, RSVP and plus-one are never cleared by an empty cell)
select g.id,
       v.first_name,
       case when 'last_name' = any (%(fields)s::text[]) then v.last_name
            else g.last_name end as last_name,
       coalesce(v.email, g.email) as email,
       coalesce(ops.import_rsvp(v.rsvp_status), g.rsvp_status) as rsvp_status,
       case when 'dietary_requirements' = any (%(fields)s::text[])
            then ops.import_dietary(v.dietary_requirements)
            else g.dietary_requirements end as dietary_requirements,
       case when 'table_number' = any (%(fields)s::text[]) then v.table_number::integer
            else g.table_number end as table_number,
       coalesce(ops.import_flag(v.plus_one), g.plus_one) as plus_one,
       case when 'plus_one_name' = any (%(fields)s::text[]) then v.plus_one_name
            else g.plus_one_name end as plus_one_name,
       case when 'notes' = any (%(fields)s::text[]) then v.notes else g.notes end as notes,
       (g.first_name, g.last_name, g.email, g.rsvp_status, g.dietary_requirements,
        g.table_number, g.plus_one, g.plus_one_name, g.notes) as old
from valid v
join matched m on m.line = v.line and pg_catalog.cardinality(m.ids) = 1
join public.guests g on g.wedding_id = %(target)s and g.id = m.ids[1]

-- name: guest_errors
-- the rows' errors: what reading found, then what the values are
insert into ops.import_errors (import_id, line, field, value, reason)
select s.import_id, s.line, e.field, pg_catalog.left(e.value, 80), e.reason
from ops.import_guest_rows s
cross join lateral (values
    (s.bad_field, s.bad_value, s.bad_reason),
    ('first_name', s.first_name,
     case when s.bad_reason is null and s.first_name is null
          then 'a first name is required' end),
    ('email', s.email,
     case when s.bad_reason is null
               and (s.email not like '%%_@_%%._%%' or pg_catalog.strpos(s.email, ' ') > 0)
          then 'not an email address' end),
    ('rsvp_status', s.rsvp_status,
     case when s.bad_reason is null and s.rsvp_status is not null
               and ops.import_rsvp(s.rsvp_status) is null
          then 'not an RSVP answer (pending, accepted, declined, maybe, yes, no)' end),
    ('table_number', s.table_number,
     case when s.bad_reason is null and s.table_number is not null
               and (s.table_number !~ '^[0-9]{1,6}$' or s.table_number::integer = 0)
          then 'not a table number (a whole number from 1)' end),
    ('plus_one', s.plus_one,
     case when s.bad_reason is null and s.plus_one is not null
               and ops.import_flag(s.plus_one) is null
          then 'not yes or no' end)
) as e (field, value, reason)
where s.import_id = %(import)s and e.reason is not null
  -- only rows with a problem reach the lateral list (most rows have none)
  and (s.bad_reason is not null or s.first_name is null
       or s.email not like '%%_@_%%._%%' or pg_catalog.strpos(s.email, ' ') > 0
       or ops.import_rsvp(s.rsvp_status) is null and s.rsvp_status is not null
       or s.table_number !~ '^[0-9]{1,6}$' or s.table_number = '0'
       or ops.import_flag(s.plus_one) is null and s.plus_one is not null)
on conflict do nothing

-- name: guest_conflicts
-- rows naming the same guest as an earlier row, and rows matching several existing guests
with valid as ({guest_valid}),
     matched as ({guest_matches}),
     keyed as (
         select v.line,
                case when v.email is not null then 'email' else 'first_name' end as field,
                coalesce(v.email, v.first_name) as value,
                pg_catalog.min(v.line) over (partition by
                    case when v.email is not null then 'e:' || pg_catalog.lower(v.email)
                         else 'n:' || pg_catalog.lower(v.first_name) || '|'
                              || coalesce(pg_catalog.lower(v.last_name), '') end) as first
         from valid v
     )
insert into ops.import_errors (import_id, line, field, value, reason)
select %(import)s, k.line, k.field, pg_catalog.left(k.value, 80),
       pg_catalog.format('the same guest as line %%s', k.first)
from keyed k where k.line <> k.first
union all
select %(import)s, m.line, 'email', null,
       pg_catalog.format('matches %%s existing guests; give them email addresses to tell '
                         'them apart', pg_catalog.cardinality(m.ids))
from matched m where pg_catalog.cardinality(m.ids) > 1
on conflict do nothing

-- name: guest_counts
-- what writing would do: rows to add, rows matched, matched rows the file changes
with valid as ({guest_valid}),
     matched as ({guest_matches}),
     next as ({guest_next})
select (select pg_catalog.count(*) from valid v
        where not exists (select 1 from matched m where m.line = v.line))::integer,
       (select pg_catalog.count(*) from next)::integer,
       (select pg_catalog.count(*) from next n
        where n.old is distinct from (n.first_name, n.last_name, n.email, n.rsvp_status,
                                      n.dietary_requirements, n.table_number, n.plus_one,
                                      n.plus_one_name, n.notes))::integer

-- name: guest_update
-- fragment: matched guests the file changes (an unchanged row is not touched: its version
-- stays)
update public.guests g
set (first_name, last_name, email, rsvp_status, dietary_requirements, table_number, plus_one,
     plus_one_name, notes)
  = (n.first_name, n.last_name, n.email, n.rsvp_status, n.dietary_requirements, n.table_number,
     n.plus_one, n.plus_one_name, n.notes)
from next n
where g.wedding_id = %(target)s and g.id = n.id
  and n.old is distinct from (n.first_name, n.last_name, n.email, n.rsvp_status,
                              n.dietary_requirements, n.table_number, n.plus_one,
                              n.plus_one_name, n.notes)

-- name: guest_insert
-- fragment: rows that name no existing guest
insert into public.guests (wedding_id, first_name, last_name, email, rsvp_status,
                           dietary_requirements, table_number, plus_one, plus_one_name, notes)
select %(target)s, v.first_name, v.last_name, v.email,
       coalesce(ops.import_rsvp(v.rsvp_status), 'pending'),
       ops.import_dietary(v.dietary_requirements), v.table_number::integer,
       coalesce(ops.import_flag(v.plus_one), false), v.plus_one_name, v.notes
from valid v
where not exists (select 1 from matched m where m.line = v.line)
order by v.line
