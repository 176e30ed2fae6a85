-- Statements of a vendor's CRM clients. {columns} is the read model's column list.

-- name: list_clients
-- a page of an organization's clients by first partner's name then id, after a cursor,
-- filtered by status and a name or email search (a NULL parameter filters nothing)
with p (p_organization, p_status, p_search, p_name, p_id, p_limit) as (
    values (%s::uuid, %s::text, %s::text, %s::text, %s::uuid, %s::integer)
)
select {columns}
from clients, p
where organization_id = p_organization
  and (p_status is null or status = p_status)
  and (p_search is null or partner1_name ilike p_search or partner2_name ilike p_search
       or email ilike p_search)
  and (p_id is null or (partner1_name, id) > (p_name, p_id))
order by partner1_name, id
limit (select p_limit from p)
