-- Statements of organizations and their members. {columns} is the read model's column list.

-- name: list_organizations
-- the organizations the user sees: its own, and a couple's vendors
select {columns} from organizations order by name, id

-- name: list_members
-- an organization's members (colleagues see each other)
select {columns} from organization_members where organization_id = %s order by created_at, user_id
