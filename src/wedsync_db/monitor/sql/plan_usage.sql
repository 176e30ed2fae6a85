-- Plan usage across organizations (the plan_usage collector). Minimum server version:
-- PostgreSQL 15; needs migration 0008 (plan limits).

-- name: plan_usage
-- organizations, counted rows, and organizations at (usage = maximum) or over (after a
-- downgrade) each limit of their plan or override
with overrides as (
    select organization_id,
           bool_or(limit_name = 'clients') as has_clients,
           max(maximum) filter (where limit_name = 'clients') as clients,
           bool_or(limit_name = 'members') as has_members,
           max(maximum) filter (where limit_name = 'members') as members,
           bool_or(limit_name = 'weddings') as has_weddings,
           max(maximum) filter (where limit_name = 'weddings') as weddings
    from public.organization_limit_overrides
    group by organization_id
),
limited as (
    select coalesce(u.clients, 0) as clients, coalesce(u.members, 0) as members,
           coalesce(u.weddings, 0) as weddings,
           case when v.has_clients then v.clients else p.max_clients end as max_clients,
           case when v.has_members then v.members else p.max_members end as max_members,
           case when v.has_weddings then v.weddings else p.max_weddings end as max_weddings
    from public.organizations o
    join public.plans p on p.name = o.tier
    left join public.organization_usage u on u.organization_id = o.id
    left join overrides v on v.organization_id = o.id
)
select count(*) as organizations,
       coalesce(sum(clients), 0) as clients,
       coalesce(sum(members), 0) as members,
       coalesce(sum(weddings), 0) as weddings,
       (select coalesce(sum(guests), 0) from public.wedding_usage) as guests,
       count(*) filter (where clients = max_clients) as at_clients_limit,
       count(*) filter (where clients > max_clients) as over_clients_limit,
       count(*) filter (where members = max_members) as at_members_limit,
       count(*) filter (where members > max_members) as over_members_limit,
       count(*) filter (where weddings = max_weddings) as at_weddings_limit,
       count(*) filter (where weddings > max_weddings) as over_weddings_limit
from limited
