-- Queries of the backup commands. Minimum server version: PostgreSQL 15.

-- name: archive_settings
-- what continuous archiving and incremental backups need, and whether this login may do them
select current_setting('server_version_num')::int as server_version,
       current_setting('wal_level') as wal_level,
       current_setting('archive_mode') as archive_mode,
       current_setting('archive_library') as archive_library,
       current_setting('archive_command') as archive_command,
       current_setting('basic_archive.archive_directory', true) as archive_directory,
       current_setting('summarize_wal', true) as summarize_wal,
       (select rolsuper or rolreplication from pg_roles where rolname = current_user)
           as can_replicate,
       (select rolsuper from pg_roles where rolname = current_user) as superuser,
       current_database() as database

-- name: user_tables
-- every table the fingerprint covers (extension members and system schemas left out)
select n.nspname::text, c.relname::text, format('%I.%I', n.nspname, c.relname) as qualified
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'm')
  -- unlogged tables are not in the WAL: a restored copy has them empty
  and c.relpersistence = 'p'
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_(toast|temp)'
  and not exists (select 1 from pg_depend d
                  where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
order by 3

-- name: fingerprint_settings
-- the fingerprint reads every row once, as long as that takes (parallel workers as the
-- server's settings allow); the text form of a value does not depend on the session
select set_config('statement_timeout', '0', true),
       set_config('TimeZone', 'UTC', true),
       set_config('DateStyle', 'ISO, YMD', true),
       set_config('IntervalStyle', 'postgres', true),
       set_config('extra_float_digits', '1', true),
       set_config('bytea_output', 'hex', true)

-- name: fingerprint_columns
-- every column of the fingerprinted tables, and how each is hashed: by its type's own
-- 64-bit hash when equal values of the type are identical (btequalimage, or text-like under
-- a deterministic collation), else (numeric, float, arrays, json, …) by its text form; an
-- 8-byte value is hashed in its binary form (the types' own hashes fold it to 32 bits first),
-- with bytea's hash (in every row: NULL where SQL cannot call it, before PostgreSQL 16)
with hashes as (
    -- each type's 64-bit hash, where SQL can call it with the type (not so bool's
    -- hashcharextended on 15, nor bytea's before 16: their functions take internal)
    select o.opcintype, pn.nspname::text as schema, pp.proname::text as fn
    from pg_opclass o
    join pg_am am on am.oid = o.opcmethod and am.amname = 'hash'
    join pg_amproc p on p.amprocfamily = o.opcfamily and p.amprocnum = 2
         and p.amproclefttype = o.opcintype and p.amprocrighttype = o.opcintype
    join pg_proc pp on pp.oid = p.amproc
    join pg_namespace pn on pn.oid = pp.pronamespace
    where o.opcdefault and pp.proargtypes[0] = o.opcintype
),
cols as (
    select quote_ident(n.nspname) || '.' || quote_ident(c.relname) as qualified, a.attnum,
           a.attname::text,
           a.attnotnull, t.oid as type_oid, t.typtype, t.typlen, t.typsend,
           a.attcollation
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_type t on t.oid = a.atttypid
    where a.attnum > 0 and not a.attisdropped
      and c.oid = any(%s::regclass[])
)
select cols.qualified, cols.attnum, cols.attname, cols.attnotnull,
       case when exact.ok and hash.fn is not null then hash.schema end as hash_schema,
       case when exact.ok and hash.fn is not null then hash.fn end as hash_fn,
       case when exact.ok and hash.fn is not null and cols.typlen = 8
            then send_ns.nspname::text end as send_schema,
       case when exact.ok and hash.fn is not null and cols.typlen = 8
            then send.proname::text end as send_fn,
       bytea.schema as bytea_schema, bytea.fn as bytea_fn
from cols
left join lateral (
    select h.schema, h.fn
    from hashes h
    where h.opcintype = cols.type_oid
       or (cols.typtype = 'e' and h.opcintype = 'anyenum'::regtype)
    limit 1
) hash on true
left join hashes bytea on bytea.opcintype = 'bytea'::regtype
left join lateral (
    select coalesce(bool_or(p.amproc = 'btequalimage'::regproc
                            or (p.amproc = 'btvarstrequalimage'::regproc
                                and coalesce(coll.collisdeterministic, true))), false) as ok
    from pg_opclass o
    join pg_am am on am.oid = o.opcmethod and am.amname = 'btree'
    join pg_amproc p on p.amprocfamily = o.opcfamily and p.amprocnum = 4
         and p.amproclefttype = o.opcintype and p.amprocrighttype = o.opcintype
    left join pg_collation coll on coll.oid = cols.attcollation
    where o.opcdefault
      and (o.opcintype = cols.type_oid
           or (cols.typtype = 'e' and o.opcintype = 'anyenum'::regtype))
) exact on true
left join pg_proc send on send.oid = cols.typsend
left join pg_namespace send_ns on send_ns.oid = send.pronamespace
order by 1, 2

-- name: pause_writers
-- writers wait (readers do not) while a snapshot and a restore point are taken together
lock table {tables} in share mode

-- name: restore_point
-- a named point in the WAL a restore can stop at, taken in the fingerprint's snapshot, and that
-- snapshot (equal to an earlier one when nothing committed or aborted in between)
select pg_create_restore_point(%s)::text, pg_current_snapshot()::text

-- name: wal_position
-- the WAL written so far, on this server's timeline, with the server's and the database's
-- identity: read just before a snapshot, every write the snapshot does not see comes after it
select pg_current_wal_insert_lsn()::text,
       ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int,
       (select system_identifier::text from pg_control_system()),
       (select oid::int8 from pg_database where datname = current_database())

-- name: snapshot_position
-- the transaction's snapshot, and the WAL written so far: every write it sees is before that
select pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text

-- name: sees_every_transaction
-- whether this login may read every session's transaction id (and the prepared transactions)
select pg_has_role(current_user, 'pg_read_all_stats', 'usage')
       and has_table_privilege('pg_catalog.pg_stat_activity', 'select')
       and has_table_privilege('pg_catalog.pg_prepared_xacts', 'select')

-- name: transactions_in_progress
-- how many transactions other than this one have an id and are still running (prepared ones
-- included): a snapshot's own list leaves out those above its newest completed transaction
select (select count(*) from pg_stat_activity
        where backend_xid is not null and pid <> pg_backend_pid())
       + (select count(*) from pg_prepared_xacts)

-- name: table_storage
-- where each fingerprinted table keeps its rows (its files, its size in blocks) and what of its
-- catalog entry decides its rows' hashes without a write to them (types, type modifiers,
-- collations, the value of a column added without a rewrite)
select format('%%I.%%I', n.nspname, c.relname), c.relkind::text,
       pg_relation_filenode(c.oid)::int8,
       case when c.reltoastrelid <> 0 then pg_relation_filenode(c.reltoastrelid)::int8 end,
       pg_relation_size(c.oid) / current_setting('block_size')::int8,
       (select string_agg(concat_ws(',', a.attnum, a.atttypid, a.atttypmod, a.attcollation,
                                    a.attmissingval::text), ';' order by a.attnum)
        from pg_attribute a
        where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped)
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.oid = any(%s::regclass[])

-- name: summarizer
-- whether WAL summaries are being written, and how far
select summarized_lsn::text, summarizer_pid from pg_get_wal_summarizer_state()

-- name: wal_summaries
-- the WAL summary files of a timeline
select start_lsn::text, end_lsn::text from pg_available_wal_summaries() where tli = %s

-- name: summarized_blocks
-- the blocks of this database's relations (main forks) one summary file says were written, by
-- range of blocks, with the smallest length a relation was cut to
select relfilenode::int8, relblocknumber / %(per_range)s,
       min(relblocknumber) filter (where is_limit_block)
from pg_wal_summary_contents(%(tli)s, %(start)s::pg_lsn, %(end)s::pg_lsn)
where reldatabase = %(database)s and relforknumber = 0
group by 1, 2

-- name: enum_labels
-- every enum label: one renamed changes the text of values without a write to their rows
select coalesce(md5(string_agg(concat_ws(',', oid, enumtypid, enumsortorder, enumlabel), ';'
                               order by oid)), '')
from pg_enum

-- name: serial_reads
-- no parallel workers for the rest of the transaction
select set_config('max_parallel_workers_per_gather', '0', true)

-- name: backend_process
-- this session's server process and, for a role that may read it, the data directory (a
-- process whose working directory it is runs this server, on this machine)
select pg_backend_pid(),
       case when pg_has_role(current_user, 'pg_read_all_settings', 'usage')
            then current_setting('data_directory') end

-- name: current_snapshot
-- the transaction's snapshot: which transactions' writes it sees
select pg_current_snapshot()::text

-- name: export_snapshot
-- the snapshot pg_dump is given, so that the export and the fingerprint see the same rows
select pg_export_snapshot()

-- name: walfile_name
-- the WAL segment holding an LSN (on this server's timeline)
select pg_walfile_name(%s::pg_lsn)

-- name: switch_wal
-- close the current WAL segment so that it is archived (a restore needs it), and name the
-- last segment with WAL in it: the switch returns the end of what was written, or the start
-- of the empty current segment when there was nothing to switch (on that boundary
-- pg_walfile_name names the empty segment on PostgreSQL 17 and later, hence the byte back)
select pg_walfile_name(pg_switch_wal() - 1)

-- name: archiver
-- the archiver's progress: the newest segment archived, when, and failures
select last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time
from pg_stat_archiver

-- name: in_recovery
-- whether a server is still replaying WAL
select pg_is_in_recovery()

-- name: record_event
-- a backup or a verification, for health, metrics and history
insert into ops.backup_events
    (backup_id, action, status, kind, started_at, finished_at, actor, rpo_seconds, details)
values (%(backup_id)s, %(action)s, %(status)s, %(kind)s, %(started_at)s, %(finished_at)s,
        %(actor)s, %(rpo_seconds)s, %(details)s)

-- name: events_table_exists
-- whether migration 0006 created the backup events table yet
select to_regclass('ops.backup_events') is not null
