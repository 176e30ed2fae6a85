-- The change feed's record of a row's updates (migration 0011), read in the user's scope (the
-- outbox's own row level security applies).

-- name: changed_since
-- the versions recorded after the one a caller read, up to the current one, and the columns
-- those updates changed
select count(distinct c.version) as versions,
       coalesce(array_agg(distinct f.name) filter (where f.name is not null),
                array[]::text[]) as columns
from feed.changes c
left join lateral unnest(c.changed) as f(name) on true
where c.stream = %s and c.entity = %s and c.key = %s::jsonb and c.op = 'update'
  and c.version > %s and c.version <= %s
