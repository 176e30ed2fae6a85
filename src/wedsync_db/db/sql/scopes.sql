-- Statements of the clients' scopes. Minimum server version: PostgreSQL 15.

-- name: begin_user_scope
-- the first statement of a user scope on a connection another identity used last (see
-- wedsync.begin_scope in migration 0005: it undoes what that scope left in the session)
select wedsync.begin_scope(%s, %s, %s, %s, %s)

-- name: begin_user_scope_checked
-- the same where user roles can list prepared statements or create temporary objects
select wedsync.begin_scope(%s, %s, %s, %s, %s), wedsync.assert_clean_session()

-- name: begin_scope
-- the first statement of a scope on a connection the same identity used last, and of service
-- and ops scopes (trusted code): only the settings
select pg_catalog.set_config('role', coalesce(%s, 'none'), true),
       pg_catalog.set_config('request.jwt.claims', %s, true),
       pg_catalog.set_config('wedsync.claims_signature', %s, true),
       pg_catalog.set_config('application_name', %s, true)

-- name: begin_read_scope
-- the same for the one-round-trip read, whose implicit transaction must not write
select pg_catalog.set_config('role', coalesce(%s, 'none'), true),
       pg_catalog.set_config('request.jwt.claims', %s, true),
       pg_catalog.set_config('wedsync.claims_signature', %s, true),
       pg_catalog.set_config('application_name', %s, true),
       pg_catalog.set_config('transaction_read_only', 'on', true)

-- name: connection_facts
-- what a new pooled connection needs to know: the server's default isolation, whether this
-- login can list its session's prepared statements, and whether it can create temporary
-- objects (the hardening revokes both)
select pg_catalog.current_setting('default_transaction_isolation'),
       pg_catalog.has_table_privilege('pg_catalog.pg_prepared_statements', 'select')
           or pg_catalog.has_function_privilege('pg_catalog.pg_prepared_statement()', 'execute'),
       pg_catalog.has_database_privilege(pg_catalog.current_database(), 'temporary')

-- name: claims_key_exists
-- whether the database has a claims signing key table (migration 0005)
select pg_catalog.to_regclass('wedsync.claims_signing_key') is not null

-- name: claims_key
-- the key the clients sign claims with; no row means claims are accepted unsigned
select key from wedsync.claims_signing_key where id
