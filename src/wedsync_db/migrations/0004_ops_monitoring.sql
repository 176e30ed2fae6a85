-- Metric history and the administrative functions that `wedsync-db inspect`, the HTTP API and
-- psql users share. Every function is SECURITY DEFINER with an empty search_path (every name is
-- schema-qualified) and only service_role may EXECUTE it. PostgreSQL 15 or later.

grant usage on schema ops to service_role;

-- One row per captured snapshot: flat numeric metrics for time series, details for drill-down.
create table ops.metric_snapshots (
    id bigint generated always as identity primary key,
    captured_at timestamptz not null default now(),
    source text not null check (source in ('sampler', 'capture')),
    metrics jsonb not null check (jsonb_typeof(metrics) = 'object'),
    details jsonb not null default '{}'::jsonb
);
-- series reads and retention purges are both ranges of captured_at
create index metric_snapshots_captured_at_idx on ops.metric_snapshots (captured_at);

-- The cumulative pg_stat_statements counters of the latest capture, so that query statistics
-- are differences between captures, also across restarts; the view itself is never reset.
create table ops.query_stats_baseline (
    id boolean primary key default true check (id),
    captured_at timestamptz not null,
    stats_reset timestamptz,
    counters jsonb not null
);

-- the audience a connection serves, from the application_name wedsync-db's clients set
create function ops.connection_audience(application_name text) returns text
    language sql immutable parallel safe
as $$
    select case
        when $1 = 'wedsync:vendor' then 'vendor'
        when $1 = 'wedsync:couple' then 'couple'
        when $1 = 'wedsync:service' then 'service'
        when $1 = 'wedsync:ops' then 'ops'
        -- idle connections parked in wedsync-db's pools between scopes
        when $1 in ('wedsync:user-pool', 'wedsync:service-pool') then 'pool'
        else 'other'
    end
$$;

-- client connections of the whole server by audience and state (max_connections is per server)
create function ops.connection_stats()
returns table (
    audience text,
    state text,
    connections integer,
    waiting_on_locks integer,
    longest_transaction_seconds double precision,
    longest_query_seconds double precision
)
    language sql stable security definer
    set search_path = ''
as $$
    select ops.connection_audience(a.application_name),
           coalesce(a.state, 'unknown'),
           count(*)::integer,
           (count(*) filter (where a.wait_event_type = 'Lock'))::integer,
           max(greatest(extract(epoch from pg_catalog.clock_timestamp() - a.xact_start), 0))::float8,
           (max(greatest(extract(epoch from pg_catalog.clock_timestamp() - a.query_start), 0))
               filter (where a.state = 'active'))::float8
    from pg_catalog.pg_stat_activity a
    where a.backend_type = 'client backend'
    group by 1, 2
    order by 1, 2
$$;

-- Cumulative pg_stat_statements counters of the current database with the column names of
-- PostgreSQL 15 to 18 normalised (total_time became total_exec_time in 13; blk_read_time was
-- split into shared_/local_blk_read_time in 17). Query texts only when asked: reading them
-- loads the whole texts file.
create function ops.query_stats(include_text boolean default false)
returns table (
    queryid bigint,
    userid oid,
    toplevel boolean,
    calls bigint,
    total_exec_ms double precision,
    rows bigint,
    shared_blks_hit bigint,
    shared_blks_read bigint,
    temp_blks_written bigint,
    io_read_ms double precision,
    io_write_ms double precision,
    stats_since timestamptz,
    query text
)
    language plpgsql stable security definer
    set search_path = ''
as $$
declare
    ext_schema text;
    cols text[];
    read_cols text[];
    write_cols text[];
begin
    select n.nspname into ext_schema
    from pg_catalog.pg_extension e
    join pg_catalog.pg_namespace n on n.oid = e.extnamespace
    where e.extname = 'pg_stat_statements';
    if ext_schema is null then
        raise exception 'pg_stat_statements is not installed in database %',
                pg_catalog.current_database()
            using errcode = 'undefined_object',
                  hint = 'add pg_stat_statements to shared_preload_libraries, restart the '
                      'server and run CREATE EXTENSION pg_stat_statements';
    end if;
    select pg_catalog.array_agg(a.attname::text) into cols
    from pg_catalog.pg_attribute a
    where a.attrelid = pg_catalog.to_regclass(pg_catalog.quote_ident(ext_schema)
                                              || '.pg_stat_statements')
      and a.attnum > 0 and not a.attisdropped;
    select coalesce(pg_catalog.array_agg('s.' || c), '{}') into read_cols
    from pg_catalog.unnest(array['shared_blk_read_time', 'local_blk_read_time',
                                 'temp_blk_read_time', 'blk_read_time']) c
    where c = any(cols);
    select coalesce(pg_catalog.array_agg('s.' || c), '{}') into write_cols
    from pg_catalog.unnest(array['shared_blk_write_time', 'local_blk_write_time',
                                 'temp_blk_write_time', 'blk_write_time']) c
    where c = any(cols);
    begin
        return query execute pg_catalog.format(
            'select s.queryid, s.userid, %s, s.calls, s.%I, s.rows, s.shared_blks_hit,'
            ' s.shared_blks_read, s.temp_blks_written, (%s)::float8, (%s)::float8, %s, %s'
            ' from %I.pg_stat_statements($1) s'
            ' where s.queryid is not null and s.dbid = (select d.oid from pg_catalog.pg_database d'
            ' where d.datname = pg_catalog.current_database())',
            case when 'toplevel' = any(cols) then 's.toplevel' else 'true' end,
            case when 'total_exec_time' = any(cols) then 'total_exec_time' else 'total_time' end,
            coalesce(nullif(pg_catalog.array_to_string(read_cols, ' + '), ''), '0'),
            coalesce(nullif(pg_catalog.array_to_string(write_cols, ' + '), ''), '0'),
            case when 'stats_since' = any(cols) then 's.stats_since' else 'null::timestamptz' end,
            case when include_text then 's.query' else 'null::text' end,
            ext_schema)
        using include_text;
    exception when object_not_in_prerequisite_state then
        raise exception '%', sqlerrm
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'add pg_stat_statements to shared_preload_libraries and restart the server';
    end;
end
$$;

-- Top statements by total execution time since the statistics were last reset; a statement
-- whose mean time exceeds the wedding-day latency threshold is flagged as a wedding-day risk.
create function ops.performance_report(
    wedding_day_latency_ms double precision default 100,
    top_n integer default 20
)
returns table (
    queryid text,
    calls bigint,
    total_ms double precision,
    mean_ms double precision,
    rows bigint,
    share_of_total double precision,
    cache_hit_ratio double precision,
    wedding_day_risk boolean,
    query text
)
    language sql stable security definer
    set search_path = ''
as $$
    with per_query as (
        select q.queryid,
               sum(q.calls)::bigint as calls,
               sum(q.total_exec_ms) as total_ms,
               sum(q.rows)::bigint as rows,
               sum(q.shared_blks_hit) as hit,
               sum(q.shared_blks_read) as read,
               min(q.query) as query
        from ops.query_stats(true) q
        group by q.queryid
    )
    select p.queryid::text,
           p.calls,
           p.total_ms,
           p.total_ms / nullif(p.calls, 0),
           p.rows,
           p.total_ms / nullif(sum(p.total_ms) over (), 0),
           p.hit::float8 / nullif(p.hit + p.read, 0),
           coalesce(p.total_ms / nullif(p.calls, 0) > wedding_day_latency_ms, false),
           p.query
    from per_query p
    order by p.total_ms desc
    limit top_n
$$;

-- Vacuum and analyze state of every user table: dead rows, when autovacuum is due (per-table
-- storage parameters override the server settings), transaction-ID age and size.
create function ops.table_maintenance_report()
returns table (
    schema_name text,
    table_name text,
    live_tuples bigint,
    dead_tuples bigint,
    dead_fraction double precision,
    last_vacuum timestamptz,
    last_analyze timestamptz,
    vacuum_threshold bigint,
    autovacuum_due boolean,
    analyze_due boolean,
    autovacuum_enabled boolean,
    xid_age integer,
    total_bytes bigint
)
    language sql stable security definer
    set search_path = ''
as $$
    select t.schemaname::text,
           t.relname::text,
           t.n_live_tup,
           t.n_dead_tup,
           t.n_dead_tup::float8 / nullif(t.n_live_tup + t.n_dead_tup, 0),
           greatest(t.last_vacuum, t.last_autovacuum),
           greatest(t.last_analyze, t.last_autoanalyze),
           o.vacuum_threshold,
           t.n_dead_tup > o.vacuum_threshold,
           t.n_mod_since_analyze > o.analyze_threshold,
           o.enabled,
           case when c.relkind in ('r', 'm', 't') then pg_catalog.age(c.relfrozenxid) end,
           pg_catalog.pg_total_relation_size(c.oid)
    from pg_catalog.pg_stat_user_tables t
    join pg_catalog.pg_class c on c.oid = t.relid
    cross join lateral (
        select
            (coalesce(max(r.option_value) filter (where r.option_name = 'autovacuum_vacuum_threshold'),
                      pg_catalog.current_setting('autovacuum_vacuum_threshold'))::float8
             + coalesce(max(r.option_value) filter (where r.option_name = 'autovacuum_vacuum_scale_factor'),
                        pg_catalog.current_setting('autovacuum_vacuum_scale_factor'))::float8
               * greatest(c.reltuples, 0))::bigint as vacuum_threshold,
            (coalesce(max(r.option_value) filter (where r.option_name = 'autovacuum_analyze_threshold'),
                      pg_catalog.current_setting('autovacuum_analyze_threshold'))::float8
             + coalesce(max(r.option_value) filter (where r.option_name = 'autovacuum_analyze_scale_factor'),
                        pg_catalog.current_setting('autovacuum_analyze_scale_factor'))::float8
               * greatest(c.reltuples, 0))::bigint as analyze_threshold,
            coalesce(max(r.option_value) filter (where r.option_name = 'autovacuum_enabled'),
                     pg_catalog.current_setting('autovacuum'))::boolean as enabled
        from pg_catalog.pg_options_to_table(c.reloptions) r
    ) o
    order by t.n_dead_tup desc, t.schemaname, t.relname
$$;

-- Index advice with the offending objects and, where there is one, the SQL remedy:
--   invalid       left INVALID by a failed concurrent build: maintained on writes, never used
--   unused        never scanned although its table is read, and at least min_unused_bytes big
--                 (unique and constraint indexes are kept; a smaller one costs writes little)
--   duplicate     its key columns are a leading prefix of another index on the same table
--   missing       a table of at least min_table_rows rows read mostly by sequential scans
--   unindexed_fk  a foreign key whose columns lead no index: deletes on the parent scan it
create function ops.index_recommendations(
    min_table_rows bigint default 10000,
    min_unused_bytes bigint default 1048576
)
returns table (
    kind text,
    schema_name text,
    table_name text,
    index_name text,
    detail text,
    remedy text,
    size_bytes bigint
)
    language sql stable security definer
    set search_path = ''
as $$
    with user_tables as (
        select t.oid, n.nspname::text as schema_name, t.relname::text as table_name
        from pg_catalog.pg_class t
        join pg_catalog.pg_namespace n on n.oid = t.relnamespace
        where t.relkind in ('r', 'p', 'm')
          and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname !~ '^pg_toast'
          and not exists (
              select 1 from pg_catalog.pg_depend d
              where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                and d.objid = t.oid and d.deptype = 'e')
    ),
    idx as (
        select i.indexrelid, i.indrelid, u.schema_name, u.table_name,
               c.relname::text as index_name, i.indisunique, i.indisprimary, i.indisvalid,
               i.indnatts, i.indnkeyatts, c.relam,
               i.indkey::text || ' ' as keys,
               i.indclass::text || ' ' as classes,
               i.indoption::text || ' ' as options,
               i.indexprs is not null or i.indpred is not null as partial_or_expression,
               exists (select 1 from pg_catalog.pg_constraint k where k.conindid = i.indexrelid)
                   as backs_constraint,
               pg_catalog.pg_relation_size(i.indexrelid) as size_bytes,
               s.idx_scan
        from pg_catalog.pg_index i
        join user_tables u on u.oid = i.indrelid
        join pg_catalog.pg_class c on c.oid = i.indexrelid
        left join pg_catalog.pg_stat_user_indexes s on s.indexrelid = i.indexrelid
    )
    select 'invalid', x.schema_name, x.table_name, x.index_name,
           'index is INVALID (a failed CREATE INDEX CONCURRENTLY or REINDEX): every write '
               'maintains it but no query can use it',
           pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I;  -- then recreate it CONCURRENTLY',
                             x.schema_name, x.index_name),
           x.size_bytes
    from idx x
    where not x.indisvalid
    union all
    select 'unused', x.schema_name, x.table_name, x.index_name,
           pg_catalog.format('never scanned since the statistics were reset, while %s is read '
                             '(%s sequential, %s index scans)',
                             x.table_name, t.seq_scan, coalesce(t.idx_scan, 0)),
           pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I;', x.schema_name, x.index_name),
           x.size_bytes
    from idx x
    join pg_catalog.pg_stat_user_tables t on t.relid = x.indrelid
    where x.indisvalid and x.idx_scan = 0 and not x.indisunique and not x.backs_constraint
      and t.seq_scan + coalesce(t.idx_scan, 0) > 0 and x.size_bytes >= min_unused_bytes
    union all
    select 'duplicate', a.schema_name, a.table_name, a.index_name,
           pg_catalog.format('its columns are a leading prefix of %I', b.index_name),
           pg_catalog.format('DROP INDEX CONCURRENTLY %I.%I;', a.schema_name, a.index_name),
           a.size_bytes
    from idx a
    join idx b on b.indrelid = a.indrelid and b.indexrelid <> a.indexrelid and b.relam = a.relam
    where a.indisvalid and b.indisvalid
      and not a.indisunique and not a.backs_constraint
      and not a.partial_or_expression and not b.partial_or_expression
      and b.indnatts = b.indnkeyatts
      and b.keys like a.keys || '%' and b.classes like a.classes || '%'
      and b.options like a.options || '%'
      -- identical twins: report only one of them
      and (b.keys <> a.keys or b.indisunique or a.indexrelid > b.indexrelid)
    union all
    select 'missing', t.schemaname::text, t.relname::text, null::text,
           pg_catalog.format('%s live rows read by %s sequential scans (%s rows each on average) '
                             'against %s index scans',
                             t.n_live_tup, t.seq_scan, t.seq_tup_read / greatest(t.seq_scan, 1),
                             coalesce(t.idx_scan, 0)),
           null::text,
           pg_catalog.pg_relation_size(t.relid)
    from pg_catalog.pg_stat_user_tables t
    where t.n_live_tup >= min_table_rows and t.seq_scan > coalesce(t.idx_scan, 0)
    union all
    select 'unindexed_fk', u.schema_name, u.table_name, null::text,
           pg_catalog.format('foreign key %I (%s) references %s; no index leads with these '
                             'columns, so deleting or re-keying a %s row scans %s '
                             '(%s sequential scans so far)',
                             k.conname, f.cols, k.confrelid::pg_catalog.regclass,
                             k.confrelid::pg_catalog.regclass, u.table_name,
                             coalesce(t.seq_scan, 0)),
           pg_catalog.format('CREATE INDEX CONCURRENTLY ON %I.%I (%s);',
                             u.schema_name, u.table_name, f.cols),
           pg_catalog.pg_relation_size(u.oid)
    from pg_catalog.pg_constraint k
    join user_tables u on u.oid = k.conrelid
    left join pg_catalog.pg_stat_user_tables t on t.relid = k.conrelid
    cross join lateral (
        select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by c.ord) as cols
        from pg_catalog.unnest(k.conkey) with ordinality c(attnum, ord)
        join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = c.attnum
    ) f
    where k.contype = 'f'
      and not exists (
          select 1 from pg_catalog.pg_index i
          where i.indrelid = k.conrelid and i.indisvalid and i.indpred is null
            and (i.indkey::int2[])[0:pg_catalog.cardinality(k.conkey) - 1] @> k.conkey
            and (i.indkey::int2[])[0:pg_catalog.cardinality(k.conkey) - 1] <@ k.conkey)
    order by 1, 2, 3, 4
$$;

revoke execute on function
    ops.connection_audience(text),
    ops.connection_stats(),
    ops.query_stats(boolean),
    ops.performance_report(double precision, integer),
    ops.table_maintenance_report(),
    ops.index_recommendations(bigint, bigint)
    from public;
grant execute on function
    ops.connection_audience(text),
    ops.connection_stats(),
    ops.query_stats(boolean),
    ops.performance_report(double precision, integer),
    ops.table_maintenance_report(),
    ops.index_recommendations(bigint, bigint)
    to service_role;
