-- Security lints in the spirit of Supabase's splinter. Minimum server version: PostgreSQL 15
-- (regexp_count). Run without parameters: the format() patterns use a single %.

-- name: security_lints
-- tenant tables without (forced) RLS, API-visible tables without RLS, policies on tables with
-- RLS off, SECURITY DEFINER functions without search_path pinned to a list ending in pg_temp or
-- owned by a superuser, TEMP granted to PUBLIC, user roles able to signal backends or read other
-- sessions' statements, and policies that call a claim helper once per row
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
definers as (
    select pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,
                             pg_catalog.pg_get_function_identity_arguments(p.oid)) as signature,
           (select pg_catalog.substr(c, 13) from pg_catalog.unnest(p.proconfig) c
            where c like 'search_path=%') as search_path,
           o.rolname as owner, o.rolsuper as owner_is_superuser
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    join pg_catalog.pg_roles o on o.oid = p.proowner
    where p.prosecdef
      and n.nspname not in ('pg_catalog', 'information_schema')
      and not exists (
          select 1 from pg_catalog.pg_depend d
          where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
            and d.objid = p.oid and d.deptype = 'e')
),
-- the roles an application's users act as (PostgREST / Supabase names and the user pool login)
user_roles as (
    select r.oid, r.rolname from pg_catalog.pg_roles r
    where r.rolname in ('anon', 'authenticated', 'wedsync_authenticator')
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
select case when d.search_path is null then 'security_definer_search_path_mutable'
            else 'security_definer_search_path_without_pg_temp' end,
       d.signature,
       case when d.search_path is null
            then 'SECURITY DEFINER function without a fixed search_path: a caller can create '
                 'objects that shadow the ones it uses and run them with the owner''s privileges'
            else pg_catalog.format('SECURITY DEFINER function with search_path = %s: unless '
                 'pg_temp is listed last, PostgreSQL searches it first for tables and types, so '
                 'a temporary object shadows what the function uses and runs with its owner''s '
                 'privileges', d.search_path)
       end,
       pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;  -- then '
                         'schema-qualify every name it uses', d.signature)
from definers d
where d.search_path is null
   or d.search_path !~ '(^|,)\s*"?pg_temp"?\s*$'
union all
select 'security_definer_owned_by_superuser', d.signature,
       pg_catalog.format('SECURITY DEFINER function owned by the superuser %I: any flaw in it, or '
                         'in what it calls, runs with every privilege, up to COPY … TO PROGRAM on '
                         'the database host', d.owner),
       pg_catalog.format('ALTER FUNCTION %s OWNER TO <a NOLOGIN role with only the privileges it '
                         'needs>;', d.signature)
from definers d
where d.owner_is_superuser
union all
select 'temp_granted_to_public', pg_catalog.quote_ident(db.datname),
       'every role may create temporary objects in this database: a user scope can shadow the '
           'tables and types that later statements (and SECURITY DEFINER functions without '
           'pg_temp last in their search_path) resolve, and leave them for the next scope',
       pg_catalog.format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC; GRANT TEMPORARY ON DATABASE '
                         '%I TO service_role;  -- wedsync-db migrate apply does this',
                         db.datname, db.datname)
from pg_catalog.pg_database db
where db.datname = pg_catalog.current_database()
  and exists (
      select 1 from pg_catalog.aclexplode(coalesce(db.datacl,
                                                   pg_catalog.acldefault('d', db.datdba))) a
      where a.grantee = 0 and a.privilege_type = 'TEMPORARY')
union all
select 'user_roles_can_signal_backends', pg_catalog.string_agg(r.rolname::text, ', '),
       'user roles may cancel or terminate other sessions of their own login (after RESET '
           'ROLE, every other connection of the user pool)',
       'REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer), '
           'pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC;  -- as a superuser; '
           'wedsync-db migrate apply does this'
from user_roles r
where pg_catalog.has_function_privilege(r.oid, 'pg_catalog.pg_cancel_backend(integer)', 'execute')
   or pg_catalog.has_function_privilege(r.oid, 'pg_catalog.pg_terminate_backend(integer, bigint)',
                                        'execute')
having pg_catalog.count(*) > 0
union all
select 'user_roles_can_read_query_texts', pg_catalog.string_agg(r.rolname::text, ', '),
       'user roles may read other sessions'' statements (pg_stat_activity, or pg_stat_statements '
           'with other tenants'' literals)',
       'REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC; REVOKE EXECUTE ON FUNCTION '
           'pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC;  -- and pg_stat_statements; as '
           'a superuser; wedsync-db migrate apply does this'
from user_roles r
where pg_catalog.has_table_privilege(r.oid, 'pg_catalog.pg_stat_activity', 'select')
   or pg_catalog.has_function_privilege(r.oid, 'pg_catalog.pg_stat_get_activity(integer)',
                                        'execute')
   or (pg_catalog.to_regclass('pg_stat_statements') is not null
       and pg_catalog.has_table_privilege(r.oid, pg_catalog.to_regclass('pg_stat_statements'),
                                          'select'))
having pg_catalog.count(*) > 0
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

-- name: claims_key_table
-- whether the claims signing key table exists (migration 0005)
select pg_catalog.to_regclass('wedsync.claims_signing_key') is not null

-- name: claims_key_present
-- whether the database has a claims signing key (without one, claims are accepted unsigned)
select exists (select 1 from wedsync.claims_signing_key)
