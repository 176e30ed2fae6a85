-- Queries the inspect reports add to the monitor's own.

-- name: own_statements
-- statements run only by this tool's own sessions: monitoring, migrations and maintenance use
-- the service pool's login without a role switch, while applications run as anon,
-- authenticated or service_role (a statement also run under another role is not ours alone)
select q.queryid::text as queryid
from ops.query_stats(false) q
group by q.queryid
having bool_and(q.userid = (select r.oid from pg_catalog.pg_roles r
                            where r.rolname = current_user))
