-- Statements shared by every entity of the data layer. {table}, {columns}, {key_match},
-- {names}, {values} and {assignments} are filled with identifiers from the entity's model
-- (trusted names, never user input); values are always bound parameters.

-- name: select_row
-- one row by its primary key, as the current user sees it
select {columns} from {table} where {key_match}

-- name: insert_row
-- a new row; the database fills what the caller left out (version starts at 1)
insert into {table} ({names}) values ({values}) returning {columns}

-- name: update_row
-- the caller's changes, only if the row still has the version the caller read
update {table} set {assignments} where {key_match} and version = %s returning {columns}

-- name: delete_row
-- the row, only if it still has the version the caller read (any version when NULL)
delete from {table} where {key_match} and version = coalesce(%s::integer, version)
