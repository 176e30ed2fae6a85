-- Metric history in ops.metric_snapshots and the query-statistics baseline. Minimum server
-- version: PostgreSQL 15 (date_bin is 14+); needs migration 0004.

-- name: insert_snapshot
-- store one snapshot's flat metrics and its drill-down details
insert into ops.metric_snapshots (captured_at, source, metrics, details)
values (%(captured_at)s, %(source)s, %(metrics)s::jsonb, %(details)s::jsonb)
returning id

-- name: purge_snapshots
-- drop snapshots older than the retention period
delete from ops.metric_snapshots where captured_at < %(before)s

-- name: series
-- one metric per time bucket: mean capture time (so trends fitted to the points stay exact),
-- mean, min, max and the number of samples
select pg_catalog.to_timestamp(avg(extract(epoch from s.captured_at))) as at,
       avg((s.metrics ->> %(metric)s)::float8) as value,
       min((s.metrics ->> %(metric)s)::float8) as min_value,
       max((s.metrics ->> %(metric)s)::float8) as max_value,
       count(*)::int as samples
from ops.metric_snapshots s
where s.captured_at >= %(since)s and s.captured_at < %(until)s
  and s.metrics ? %(metric)s
group by pg_catalog.date_bin(%(bucket)s, s.captured_at, timestamptz '2000-01-01 00:00:00+00')
order by 1

-- name: known_metrics
-- the metric names of the latest snapshot
select pg_catalog.jsonb_object_keys(metrics) as name
from (select metrics from ops.metric_snapshots order by captured_at desc limit 1) latest
order by 1

-- name: load_query_baseline
-- the query-statistics counters of the latest capture
select captured_at, stats_reset, counters from ops.query_stats_baseline where id

-- name: save_query_baseline
-- replace the baseline unless a later capture already did
insert into ops.query_stats_baseline (id, captured_at, stats_reset, counters)
values (true, %(captured_at)s, %(stats_reset)s, %(counters)s::jsonb)
on conflict (id) do update
    set captured_at = excluded.captured_at,
        stats_reset = excluded.stats_reset,
        counters = excluded.counters
    where ops.query_stats_baseline.captured_at < excluded.captured_at
