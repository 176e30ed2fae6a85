-- Statements of weddings and their vendor links. {columns} is the read model's column list.

-- name: list_weddings
-- a page of the weddings the user sees, by date then id, after a cursor, optionally one status
with p (p_status, p_date, p_id, p_limit) as (
    values (%s::text, %s::date, %s::uuid, %s::integer)
)
select {columns}
from weddings, p
where (p_status is null or status = p_status)
  and (p_id is null or (wedding_date, id) > (p_date, p_id))
order by wedding_date, id
limit (select p_limit from p)

-- name: list_links
-- the vendor links the user sees (both sides see requests), of one wedding or one organization
select {columns}
from wedding_vendors
where (%s::uuid is null or wedding_id = %s::uuid)
  and (%s::uuid is null or organization_id = %s::uuid)
order by wedding_id, organization_id
