-- Statements of the change feed's reader (migration 0011). Minimum server version: PostgreSQL 15.

-- name: heads
-- the last change number and the pruned-through mark of the watched streams (service scope)
select stream, seq, pruned_through from feed.heads where stream = any(%s)

-- name: access_keys
-- the access key of every (stream, user, audience) a batch serves (service scope)
select stream, user_id, aud, key from feed.access_keys(%s, %s, %s)

-- name: read_changes
-- a stream's changes after a cursor up to a bound, read under the subscriber's own claims (RLS
-- on feed.changes decides), with that subscriber's access key computed in the same statement
select k.key as access_key, c.seq, c.entity, c.op, c.key, c.changed, c.wedding_id,
       c.organization_id, c.version, c.changed_at
from (select feed.access_key(%(stream)s) as key) k
left join lateral (
    select * from feed.changes ch
    where ch.stream = %(stream)s and ch.seq > %(after)s and ch.seq <= %(upto)s
    order by ch.seq
    limit %(limit)s
) c on true
order by c.seq

-- name: prune
-- delete the changes recorded before a moment; returns how many (service scope)
select feed.prune(%s)
