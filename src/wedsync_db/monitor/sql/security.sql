-- Security lints in the spirit of Supabase's splinter. Minimum server version: PostgreSQL 15
-- (regexp_count). Run without parameters: the format() patterns use a single %.

-- name: security_lints
-- tenant tables without (forced) RLS, API-visible tables without RLS, policies on tables with
-- RLS off, SECURITY DEFINER functions without a fixed search_path, and policies that call a
-- claim helper once per row instead of once per statement
with user_tables as (
    select c.oid, c.relrowsecurity, c.relforcerowsecurity,
           pg_catalog.format('%I.%I', n.nspname, c.relname) as qualified,
           (select pg_catalog.string_agg(a.attname::text, ', ' order by a.attnum)
            from pg_catalog.pg_attribute a
            where a.attrelid = c.oid and not a.attisdropped and a.attnum > 0
              and a.attname in ('organization_id', 'wedding_id')) as tenant_keys,
           exists (
               select 1
               from pg_catalog.aclexplode(coalesce(c.relacl,
                                                   pg_catalog.acldefault('r', c.relowner))) x
               left join pg_catalog.pg_roles r on r.oid = x.grantee
               where x.grantee = 0 or r.rolname in ('anon', 'authenticated')) as api_visible
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p')
      and n.nspname not in ('pg_catalog', 'information_schema')
      and n.nspname !~ '^pg_(toast|temp)'
      and not exists (
          select 1 from pg_catalog.pg_depend d
          where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
            and d.objid = c.oid and d.deptype = 'e')
),
claim_calls as (
    -- claim helpers (wedsync.*, Supabase auth.*) and direct reads of the JWT settings
    select '(wedsync\.[a-z_]+|auth\.[a-z_]+)\(\)|current_setting\(''request\.jwt[^'']*''' as pattern
)
select 'tenant_table_without_rls' as rule,
       t.qualified as object,
       pg_catalog.format('%s carries the tenant key %s but row level security is disabled: '
                         'any role with table privileges reads every tenant''s rows',
                         t.qualified, t.tenant_keys) as detail,
       pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY; '
                         'ALTER TABLE %s FORCE ROW LEVEL SECURITY;  -- then add its policies',
                         t.qualified, t.qualified) as remedy
from user_tables t
where t.tenant_keys is not null and not t.relrowsecurity
union all
select 'tenant_table_rls_not_forced', t.qualified,
       pg_catalog.format('row level security on %s is enabled but not forced: its owner, and '
                         'code running as the owner, bypasses every policy', t.qualified),
       pg_catalog.format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', t.qualified)
from user_tables t
where t.tenant_keys is not null and t.relrowsecurity and not t.relforcerowsecurity
union all
select 'rls_disabled_in_api', t.qualified,
       pg_catalog.format('%s is granted to anon, authenticated or PUBLIC but row level '
                         'security is disabled, so API users read all of it', t.qualified),
       pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;  -- then add its policies, '
                         'or revoke the grants', t.qualified)
from user_tables t
where t.tenant_keys is null and not t.relrowsecurity and t.api_visible
union all
select 'policy_exists_rls_disabled', t.qualified,
       pg_catalog.format('%s has policies (%s) but row level security is disabled, so none '
                         'of them applies', t.qualified, p.names),
       pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY; '
                         'ALTER TABLE %s FORCE ROW LEVEL SECURITY;', t.qualified, t.qualified)
from user_tables t
join (
    select polrelid, pg_catalog.string_agg(polname::text, ', ' order by polname) as names
    from pg_catalog.pg_policy
    group by polrelid
) p on p.polrelid = t.oid
where not t.relrowsecurity
union all
select 'security_definer_search_path_mutable',
       pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,
                         pg_catalog.pg_get_function_identity_arguments(p.oid)),
       'SECURITY DEFINER function without a fixed search_path: a caller can create objects '
           'that shadow the ones it uses and run them with the owner''s privileges',
       pg_catalog.format('ALTER FUNCTION %I.%I(%s) SET search_path = '''';  -- then '
                         'schema-qualify every name it uses', n.nspname, p.proname,
                         pg_catalog.pg_get_function_identity_arguments(p.oid))
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where p.prosecdef
  and n.nspname not in ('pg_catalog', 'information_schema')
  and not exists (
      select 1 from pg_catalog.pg_depend d
      where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
        and d.objid = p.oid and d.deptype = 'e')
  and not exists (
      select 1 from pg_catalog.unnest(coalesce(p.proconfig, '{}')) c
      where c like 'search_path=%')
union all
select 'policy_claim_call_per_row',
       pg_catalog.format('%I on %I.%I', pol.policyname, pol.schemaname, pol.tablename),
       'the policy calls a claim helper without a sub-select, so it is evaluated for every '
           'row instead of once per statement',
       pg_catalog.format('ALTER POLICY %I ON %I.%I ...;  -- write each call as '
                         '(select wedsync.current_user_id())',
                         pol.policyname, pol.schemaname, pol.tablename)
from pg_catalog.pg_policies pol
cross join claim_calls cc
cross join lateral (
    select coalesce(pol.qual, '') || ' ' || coalesce(pol.with_check, '') as expr
) e
where pg_catalog.regexp_count(e.expr, cc.pattern)
      > pg_catalog.regexp_count(e.expr, 'SELECT \(*(' || cc.pattern || ')')
order by 1, 2
