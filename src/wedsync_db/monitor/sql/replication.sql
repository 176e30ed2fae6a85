-- Streaming replication and slots. Minimum server version: PostgreSQL 15.

-- name: replication_status
-- standby or primary, a standby's replay lag (0 when it has replayed all it received), and
-- this server's WAL position (received on a standby, written on a primary) that the lag of
-- replicas and the WAL kept by slots are measured from
select pg_catalog.pg_is_in_recovery() as in_recovery,
       case when pg_catalog.pg_is_in_recovery() then
           case when pg_catalog.pg_last_wal_receive_lsn()
                     is not distinct from pg_catalog.pg_last_wal_replay_lsn()
                then 0::float8
                else extract(epoch from pg_catalog.clock_timestamp()
                                        - pg_catalog.pg_last_xact_replay_timestamp())::float8
           end
       end as replay_lag_seconds,
       (case when pg_catalog.pg_is_in_recovery() then pg_catalog.pg_last_wal_receive_lsn()
             else pg_catalog.pg_current_wal_lsn() end)::text as wal_position

-- name: replicas
-- standbys streaming from this server, with their lag in time and in bytes behind the
-- position replication_status read
select coalesce(r.application_name, '') as application_name,
       r.client_addr::text as client_addr,
       r.state, r.sync_state,
       extract(epoch from r.write_lag)::float8 as write_lag_seconds,
       extract(epoch from r.flush_lag)::float8 as flush_lag_seconds,
       extract(epoch from r.replay_lag)::float8 as replay_lag_seconds,
       pg_catalog.pg_wal_lsn_diff(%(wal_position)s::pg_lsn, r.replay_lsn)::bigint as lag_bytes
from pg_catalog.pg_stat_replication r
order by 1

-- name: slots
-- replication slots and the WAL each keeps behind the position replication_status read
select s.slot_name::text as slot_name, s.slot_type, s.database::text as database, s.active,
       s.wal_status,
       pg_catalog.pg_wal_lsn_diff(%(wal_position)s::pg_lsn, s.restart_lsn)::bigint
           as retained_bytes
from pg_catalog.pg_replication_slots s
order by 1
