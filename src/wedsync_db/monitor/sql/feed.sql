-- The change feed's outbox (migration 0011). Minimum server version: PostgreSQL 15.

-- name: feed_stats
-- outbox rows (the planner's estimate once analysed), its size, the streams, the oldest and
-- newest change, how many transaction ids the commit watermark (pg_snapshot_xmin) trails the
-- next one by, and the age of the oldest transaction that has written anything
select case when c.reltuples < 0 then (select count(*) from feed.changes)
            else c.reltuples::bigint end as changes,
       pg_total_relation_size(c.oid) as bytes,
       (select count(*) from feed.heads) as streams,
       (select min(changed_at) from feed.changes) as oldest_change_at,
       (select max(changed_at) from feed.changes) as newest_change_at,
       (pg_snapshot_xmax(pg_current_snapshot())::text::numeric
        - pg_snapshot_xmin(pg_current_snapshot())::text::numeric)::bigint as watermark_lag_xids,
       (select extract(epoch from max(now() - a.xact_start))::float8
        from pg_stat_activity a
        where a.backend_xid is not null and a.pid <> pg_backend_pid()) as oldest_writer_seconds
from pg_class c
where c.oid = 'feed.changes'::regclass
