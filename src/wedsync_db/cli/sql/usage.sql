-- Plan usage for `wedsync-db usage`. Minimum server version: PostgreSQL 15.

-- name: organization_usage
-- each organization's plan, counters and maxima (NULL: unlimited); %(organization)s NULL: all
select o.id as organization_id, o.tier as plan,
       coalesce(u.clients, 0) as clients,
       wedsync.organization_limit(o.id, 'clients') as max_clients,
       coalesce(u.members, 0) as members,
       wedsync.organization_limit(o.id, 'members') as max_members,
       coalesce(u.weddings, 0) as weddings,
       wedsync.organization_limit(o.id, 'weddings') as max_weddings
from public.organizations o
left join public.organization_usage u on u.organization_id = o.id
where %(organization)s::uuid is null or o.id = %(organization)s::uuid
order by o.name, o.id
limit 1000

-- name: reconcile_usage
-- recount every counter from the tables; the counters that differed (fixed unless dry run)
select scope, id, counter, recorded, actual from ops.reconcile_usage(%(dry_run)s)
