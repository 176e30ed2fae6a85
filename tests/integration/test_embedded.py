"""The embedded PostgreSQL server: initialise, start, reuse, stop, restart, refuse bad setups.

Each test gets its own data directory under the system temporary directory (not pytest's
``tmp_path``: a concurrent pytest run resets ``/tmp/pytest-of-<user>`` to mode 0700, which
would lock the unprivileged server account out of its data). When the suite runs as root the
module runs the server as an unprivileged account; one test also drives it as a non-root user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fixtures.environment import free_port, scratch_dir
from wedsync_db.embedded import DEFAULT_DATABASE, ROOT_RUN_AS, EmbeddedPostgres
from wedsync_db.errors import EmbeddedServerError


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = scratch_dir("wedsync-embedded-test-")
    yield path
    # stop anything a failed test left running before removing its files
    for pid_file in path.rglob("postmaster.pid"):
        EmbeddedPostgres(pid_file.parent.parent).stop()
    shutil.rmtree(path, ignore_errors=True)


def query(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(sql)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def test_lifecycle_start_reuse_stop_restart(data_dir: Path) -> None:
    port = free_port()
    server = EmbeddedPostgres(data_dir, port=port, fast=True)
    assert server.status().initialised is False
    assert server.stop() is False  # nothing to stop yet

    status, started = server.ensure_running()
    try:
        assert started is True
        assert status.running and status.initialised
        assert status.port == port and status.pid
        dsn = status.dsn(DEFAULT_DATABASE)
        assert f"127.0.0.1:{port}/{DEFAULT_DATABASE}" in dsn

        [(preload,)] = query(dsn, "show shared_preload_libraries")
        assert "pg_stat_statements" in str(preload)
        assert query(
            dsn, "select count(*) from pg_extension where extname = 'pg_stat_statements'"
        ) == [(1,)]
        # the view works, i.e. the library really is loaded
        assert query(dsn, "select count(*) >= 0 from pg_stat_statements") == [(True,)]
        # the server runs unprivileged even when we are root
        [(user,)] = query(dsn, "select current_setting('data_directory')")
        owner = pwd.getpwuid(Path(str(user)).stat().st_uid).pw_name
        assert owner == (ROOT_RUN_AS if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name)

        query(dsn, "create table kept (id int primary key)")
        query(dsn, "insert into kept values (42)")

        # a second ensure_running, even through another handle, reuses the running server
        again, started_again = EmbeddedPostgres(data_dir).ensure_running()
        assert started_again is False
        assert again.pid == status.pid and again.port == port

        assert server.stop() is True
        stopped = server.status()
        assert stopped.running is False and stopped.pid is None
        assert stopped.initialised is True
        with pytest.raises(EmbeddedServerError, match="not running"):
            server.psql_command()

        # restart: same port, same data
        restarted, started = server.ensure_running()
        assert started is True and restarted.port == port
        assert restarted.pid != status.pid
        assert query(restarted.dsn(DEFAULT_DATABASE), "select id from kept") == [(42,)]
    finally:
        server.stop()


def test_a_file_in_place_of_the_data_directory_is_refused(data_dir: Path) -> None:
    target = data_dir / "not-a-dir"
    target.write_text("hello")
    with pytest.raises(EmbeddedServerError) as info:
        EmbeddedPostgres(target, port=free_port()).ensure_running()
    message = str(info.value)
    assert str(target) in message
    assert "WEDSYNC_DATA_DIR" in message


def test_a_foreign_non_empty_directory_is_refused_and_left_alone(data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    pgdata.mkdir()
    (pgdata / "holiday-photos.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(EmbeddedServerError, match="not a PostgreSQL data directory"):
        EmbeddedPostgres(data_dir, port=free_port()).ensure_running()
    assert (pgdata / "holiday-photos.jpg").read_bytes() == b"\xff\xd8"


def test_a_port_in_use_is_refused_naming_the_port(data_dir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = EmbeddedPostgres(data_dir, port=port, fast=True)
        with pytest.raises(EmbeddedServerError) as info:
            server.ensure_running(timeout=20)
        assert str(port) in str(info.value)
        assert server.status().running is False


NON_ROOT_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import psycopg
    from wedsync_db.embedded import EmbeddedPostgres

    assert os.geteuid() != 0
    server = EmbeddedPostgres(Path(sys.argv[1]), port=int(sys.argv[2]), fast=True)
    status, started = server.ensure_running()
    try:
        assert started and status.running
        with psycopg.connect(status.dsn(), autocommit=True) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        server.stop()
    assert not server.status().running
    print("ok")
    """
)


def interpreter_for_others() -> str | None:
    """A Python of this version that other accounts may run (the venv's may live in /root)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (os.path.realpath(sys.executable), f"/usr/bin/python{version}"):
        path = Path(candidate)
        if path.exists() and all(p.stat().st_mode & 0o001 for p in (path, *path.parents)):
            return str(path)
    return None


def test_works_for_an_unprivileged_user(data_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("already unprivileged: the lifecycle test above covers this case")
    python = interpreter_for_others()
    if python is None:
        pytest.skip(f"no Python {sys.version_info[:2]} that a non-root account may execute")
    # the account exists once any embedded server has been started as root
    try:
        account = pwd.getpwnam(ROOT_RUN_AS)
    except KeyError:
        EmbeddedPostgres(data_dir / "bootstrap")._prepare_directory()
        account = pwd.getpwnam(ROOT_RUN_AS)
    home = data_dir / "user-owned"
    home.mkdir()
    os.chown(home, account.pw_uid, account.pw_gid)
    data_dir.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "WEDSYNC_", "COV"))}
    env["HOME"] = str(home)
    script = f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    result = subprocess.run(
        [python, "-c", script + NON_ROOT_SCRIPT, str(home / "data"), str(free_port())],
        user=account.pw_uid,
        group=account.pw_gid,
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_under_root_the_server_account_is_announced_before_it_is_created(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # useradd itself is not run here: it would change this machine's accounts
    from wedsync_db import embedded

    existing = pwd.getpwuid(os.getuid())
    lookups: list[str] = []

    def getpwnam(name: str) -> pwd.struct_passwd:
        lookups.append(name)
        if len(lookups) == 1:
            raise KeyError(name)
        return existing

    said_before: list[list[str]] = []

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        said_before.append([r.getMessage() for r in caplog.records])
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(embedded.subprocess, "run", run)
    with caplog.at_level("WARNING", logger="wedsync_db.embedded"):
        assert embedded.server_account() is existing
    assert lookups == [ROOT_RUN_AS, ROOT_RUN_AS]
    (messages,) = said_before  # useradd ran once, after saying what and why
    (notice,) = messages
    assert "PostgreSQL refuses to run as root" in notice
    assert f"useradd --system --no-create-home -s /usr/sbin/nologin {ROOT_RUN_AS}" in notice
