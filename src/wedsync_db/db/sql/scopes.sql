-- Statements of the clients' scopes. Minimum server version: PostgreSQL 15.

-- name: begin_scope
-- a scope's first statement: role (NULL: the login's own), signed claims, application_name
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

-- name: reset_session
-- what a user scope may have left in its session, undone before the pool hands it out again
reset all; reset role; unlisten *; close all; select pg_catalog.pg_advisory_unlock_all()

-- name: reset_session_checked
-- the same where user roles can list prepared statements or create temporary objects: a
-- session holding either is refused (WS409) and the pool closes it
reset all; reset role; unlisten *; close all;
select pg_catalog.pg_advisory_unlock_all(), wedsync.assert_clean_session()

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
