"""Test fixtures: one PostgreSQL for the session, a migrated template, a fresh database per test.

The server is the embedded PostgreSQL 18 unless WEDSYNC_TEST_DATABASE_URL names another one
(for example a PostgreSQL 15 on 127.0.0.1), which must allow CREATE DATABASE.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fixtures.environment import scratch_dir
from wedsync_db.db.client import Database, user_dsn_for
from wedsync_db.embedded import EmbeddedPostgres, free_port
from wedsync_db.migrate.runner import MigrationRunner, RunnerOptions


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Run serially against a shared server: migrations create cluster-wide roles, so two
    workers migrating on one cluster would race. On the embedded server each worker of
    `pytest -n N` (pytest-xdist) starts its own cluster, so parallel runs are safe there."""
    workers = getattr(config.option, "numprocesses", None)
    if os.environ.get("WEDSYNC_TEST_DATABASE_URL") and workers:
        config.option.numprocesses = 0
        config.option.dist = "no"
        config.option.tx = []
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"WEDSYNC_TEST_DATABASE_URL is set: running serially instead of -n {workers} "
                "(migrations create cluster-wide roles)"
            ),
            stacklevel=2,
        )


@dataclass(frozen=True)
class Server:
    """The session's server: an admin DSN and a way to address any database on it."""

    admin_dsn: str
    embedded: EmbeddedPostgres | None

    def dsn(self, dbname: str) -> str:
        return make_conninfo(self.admin_dsn, dbname=dbname)

    @property
    def version(self) -> int:
        with psycopg.connect(self.admin_dsn) as conn:
            return conn.info.server_version


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = os.environ.get("WEDSYNC_TEST_DATABASE_URL")
    if url:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("select 1")
        except psycopg.Error as exc:
            pytest.exit(f"WEDSYNC_TEST_DATABASE_URL is set but unreachable: {exc}", returncode=3)
        yield Server(url, None)
        return
    # not under pytest's basetemp: another pytest run on the machine may reset its permissions
    data_dir = scratch_dir("wedsync-test-pg-")
    server = EmbeddedPostgres(Path(data_dir), port=free_port(), fast=True)
    try:
        status, _ = server.ensure_running()
    except Exception as exc:
        pytest.exit(f"could not start the embedded PostgreSQL for the tests: {exc}", returncode=3)
    yield Server(status.dsn("postgres"), server)
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def create_database(server: Server, name: str, template: str | None = None) -> str:
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        if template:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    dsn = server.dsn(name)
    if template:
        # database-level privileges (TEMP) are not copied from the template: harden the copy
        # as `migrate apply` does
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("select ops.harden_database()")
    return dsn


def drop_database(server: Server, name: str) -> None:
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_db(pg_server: Server) -> Iterator[str]:
    """A database with every built-in migration applied, used as the template of fresh ones."""
    name = f"wedsync_tpl_{os.getpid()}"
    dsn = create_database(pg_server, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pg_stat_statements")
    asyncio.run(MigrationRunner(dsn, options=RunnerOptions(actor="tests")).apply())
    yield name
    drop_database(pg_server, name)


@pytest.fixture
def empty_db(pg_server: Server) -> Iterator[str]:
    """A fresh database with no migrations applied; yields its DSN."""
    name = f"wedsync_e_{uuid.uuid4().hex[:12]}"
    dsn = create_database(pg_server, name)
    yield dsn
    drop_database(pg_server, name)


@pytest.fixture
def fresh_db(pg_server: Server, template_db: str) -> Iterator[str]:
    """A fresh, fully migrated database; yields its DSN."""
    name = f"wedsync_t_{uuid.uuid4().hex[:12]}"
    dsn = create_database(pg_server, name, template=template_db)
    yield dsn
    drop_database(pg_server, name)


@pytest.fixture(scope="session")
def shared_db(pg_server: Server, template_db: str) -> Iterator[str]:
    """One migrated database shared by read-mostly tests that create their own unique rows."""
    name = f"wedsync_s_{os.getpid()}"
    dsn = create_database(pg_server, name, template=template_db)
    yield dsn
    drop_database(pg_server, name)


def make_database(dsn: str, **kwargs: object) -> Database:
    params = {"user_pool_size": 4, "service_pool_size": 2, "pool_timeout": 5.0}
    params.update(kwargs)  # type: ignore[arg-type]
    return Database(user_dsn=user_dsn_for(dsn), service_dsn=dsn, **params)  # type: ignore[arg-type]


@pytest.fixture
async def database(fresh_db: str) -> AsyncIterator[Database]:
    db = make_database(fresh_db)
    await db.open()
    yield db
    await db.close()


@pytest.fixture(scope="session")
async def shared_database(shared_db: str) -> AsyncIterator[Database]:
    db = make_database(shared_db, user_pool_size=4, service_pool_size=2)
    await db.open()
    yield db
    await db.close()


def dbname_of(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])
