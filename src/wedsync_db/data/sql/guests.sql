-- Statements of the guest list. {columns} is the read model's column list.

-- name: list_guests
-- a page of a wedding's guests in (last name, first name, id) order after a cursor, filtered
-- by RSVP status, a dietary requirement, table and a name or email search (a NULL parameter
-- filters nothing)
with p (p_wedding, p_rsvp, p_dietary, p_table, p_search, p_last, p_first, p_id, p_limit) as (
    values (%s::uuid, %s::text[], %s::text, %s::integer, %s::text, %s::text, %s::text,
            %s::uuid, %s::integer)
)
select {columns}
from guests, p
where wedding_id = p_wedding
  and (p_rsvp is null or rsvp_status = any (p_rsvp))
  and (p_dietary is null or dietary_requirements @> array[p_dietary])
  and (p_table is null or table_number = p_table)
  and (p_search is null or first_name ilike p_search or last_name ilike p_search
       or email ilike p_search)
  and (p_id is null or (coalesce(last_name, ''), first_name, id) > (p_last, p_first, p_id))
order by coalesce(last_name, ''), first_name, id
limit (select p_limit from p)

-- name: bulk_rsvp
-- one RSVP status for many guests of a wedding (the rows the user may change)
update guests set rsvp_status = %s
where wedding_id = %s and id = any (%s::uuid[])
returning {columns}
