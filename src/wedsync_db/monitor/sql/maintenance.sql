-- Vacuum, analyze and sequence exhaustion. Minimum server version: PostgreSQL 15; needs
-- migration 0004 (ops.table_maintenance_report).

-- name: table_maintenance
-- dead rows, autovacuum due, xid age and size of every user table, most dead rows first
select schema_name, table_name, live_tuples, dead_tuples, dead_fraction, last_vacuum,
       last_analyze, vacuum_threshold, autovacuum_due, analyze_due, autovacuum_enabled,
       xid_age, total_bytes
from ops.table_maintenance_report()

-- name: sequences
-- sequences past a share of their range; a serial int column caps the range at its type
select n.nspname::text as schema_name,
       c.relname::text as sequence_name,
       pg_catalog.format_type(s.seqtypid, null) as data_type,
       v.last_value,
       m.max_value,
       (v.last_value - s.seqmin)::float8 / nullif(m.max_value - s.seqmin, 0) as used_fraction,
       col.owned_by
from pg_catalog.pg_sequence s
join pg_catalog.pg_class c on c.oid = s.seqrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
cross join lateral (
    select case when pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE')
                then pg_catalog.pg_sequence_last_value(c.oid) end as last_value
) v
left join lateral (
    select pg_catalog.format('%%I.%%I.%%I', tn.nspname, t.relname, a.attname) as owned_by,
           case a.atttypid
               when 'pg_catalog.int2'::pg_catalog.regtype then 32767
               when 'pg_catalog.int4'::pg_catalog.regtype then 2147483647
           end as type_max
    from pg_catalog.pg_depend d
    join pg_catalog.pg_class t on t.oid = d.refobjid
    join pg_catalog.pg_namespace tn on tn.oid = t.relnamespace
    join pg_catalog.pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
    where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and d.objid = c.oid
      and d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      and d.deptype in ('a', 'i')
    limit 1
) col on true
cross join lateral (select least(s.seqmax, coalesce(col.type_max, s.seqmax)) as max_value) m
where s.seqincrement > 0
  and c.relpersistence <> 't'
  and v.last_value is not null
  and (v.last_value - s.seqmin)::float8 / nullif(m.max_value - s.seqmin, 0)
      >= %(min_fraction)s
order by used_fraction desc
