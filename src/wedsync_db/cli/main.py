"""`wedsync-db` command line."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from typing import Annotated, Any

import typer
import typer.main

from wedsync_db.cli import common
from wedsync_db.cli.common import err, out
from wedsync_db.db.admin import psql_target
from wedsync_db.embedded import DEFAULT_DATABASE
from wedsync_db.runtime import embedded_server

# The sub-commands of other modules, imported when one is run (or --help lists them): a
# command starts without importing what the others need. In --help's order, with `up` and
# `db` (defined here) where they stand.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "health": ("wedsync_db.cli.health", "health"),
    "token": ("wedsync_db.cli.token", "token_command"),
    "config": ("wedsync_db.cli.config", "app"),
    "migrate": ("wedsync_db.cli.migrate", "app"),
    "demo": ("wedsync_db.cli.demo", "app"),
    "backup": ("wedsync_db.cli.backup", "app"),
    "ops": ("wedsync_db.cli.ops", "app"),
    "metrics": ("wedsync_db.cli.monitor", "metrics_app"),
    "inspect": ("wedsync_db.cli.monitor", "inspect_app"),
    "usage": ("wedsync_db.cli.usage", "app"),
    "import": ("wedsync_db.cli.imports", "app"),
}
HELP_ORDER = ("health", "token", "up", "db", *list(LAZY_COMMANDS)[2:])


def load_command(name: str) -> Any:
    """The command of a sub-command of LAZY_COMMANDS (its module imported now)."""
    module, attribute = LAZY_COMMANDS[name]
    target: Any = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        command: Any = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class RootGroup(common.Group):
    """The root command, loading the sub-commands of other modules when asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        """Every sub-command, loaded or not, in --help's order."""
        known = [*self.commands, *LAZY_COMMANDS]
        return [n for n in HELP_ORDER if n in known] + [n for n in known if n not in HELP_ORDER]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The sub-command, imported on first use."""
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            command = load_command(cmd_name)
            common.hide_flag_placeholders(command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="wedsync-db",
    help="WedSync core database: embedded server, migrations, API, health and metrics.",
    epilog=common.exit_code_epilog(),
    cls=RootGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The embedded PostgreSQL server (used when DATABASE_URL is unset).", no_args_is_help=True
)
app.add_typer(db_app, name="db")


def _print_version(value: bool) -> None:
    if value:
        from wedsync_db import __version__

        out.print(f"wedsync-db {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    _: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """WedSync core database: embedded server, migrations, API, health and metrics."""


# --- up -----------------------------------------------------------------------------------------
@app.command()
def up(
    host: Annotated[
        str | None, typer.Option(help="HTTP bind address (default: WEDSYNC_HTTP_HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="HTTP port (default: WEDSYNC_HTTP_PORT or 8080)")
    ] = None,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply pending migrations before serving")
    ] = True,
) -> None:
    """Start the database (embedded unless DATABASE_URL is set), migrate, and serve the HTTP API."""
    from wedsync_db.serve import check_bindable, log_to_stderr, serve

    log_to_stderr()
    s = common.settings()
    host = host or s.http_host
    port = port if port is not None else s.http_port
    with common.handled():
        # a busy port fails before any server is started
        check_bindable(host, port)
    t = common.target(s, quiet=True)
    server = t.embedded
    owned = t.started_embedded
    orphan = server.orphan() if server is not None and not owned else None
    if server is not None and orphan is not None:
        err.print(
            f"the embedded PostgreSQL server in {server.data_dir} (pid {orphan.server_pid}) was "
            f"left running by a `wedsync-db up` (pid {orphan.owner_pid}) that is gone; this "
            "`up` adopts it and stops it on exit",
        )
        owned = True
    if server is not None and owned:
        server.claim()

    def on_term(signum: int, frame: object) -> None:
        # uvicorn has already shut down gracefully when this runs: a clean stop exits 0
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        common.run(serve(s, t, host=host, port=port, migrate_first=migrate_first))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if owned and server is not None:
            err.print("stopping the embedded PostgreSQL server …")
            server.stop()


# --- db -----------------------------------------------------------------------------------------
def _require_embedded() -> None:
    s = common.settings()
    if not s.uses_embedded:
        common.fail(
            "DATABASE_URL is set, so the embedded server is not used; manage that server directly"
        )


@db_app.command("start")
def db_start() -> None:
    """Initialise (first use) and start the embedded server; reuse it if already running."""
    _require_embedded()
    s = common.settings()
    server = embedded_server(s)
    orphan = server.orphan()
    with common.handled():
        status, started = server.ensure_running()
    word = "started" if started else "already running"
    if orphan is not None and not started:
        err.print(
            f"the server was left running by a `wedsync-db up` (pid {orphan.owner_pid}) that "
            "is gone; it keeps running now until `wedsync-db db stop`",
        )
        server.disown()
    out.print(f"embedded PostgreSQL {word}: pid {status.pid}, data {status.data_dir}")
    out.print(status.dsn(DEFAULT_DATABASE))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server (fast shutdown)."""
    _require_embedded()
    server = embedded_server(common.settings())
    with common.handled():
        stopped = server.stop()
    out.print("stopped" if stopped else "not running")


@db_app.command("status")
def db_status(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Whether the embedded server is running; exit 0 running, 1 stopped."""
    _require_embedded()
    server = embedded_server(common.settings())
    st = server.status()
    data = {
        "running": st.running,
        "pid": st.pid,
        "port": st.port,
        "data_dir": str(st.data_dir),
        "initialised": st.initialised,
        "dsn": st.dsn() if st.port else None,
    }
    if json_out:
        common.print_json(data)
    else:
        state = "running" if st.running else "stopped" if st.initialised else "not initialised"
        orphan = server.orphan()
        if orphan is not None:
            state += f" (left behind by `wedsync-db up` pid {orphan.owner_pid}, which is gone)"
        out.print(
            f"{state}  data={st.data_dir}  pid={st.pid or '-'}  port={st.port or '-'}",
        )
    raise typer.Exit(0 if st.running else 1)


@db_app.command("url")
def db_url() -> None:
    """Print the connection URL (DATABASE_URL redacted, or the embedded server's)."""
    s = common.settings()
    if s.database_url is not None:
        out.print(common.show_dsn(s.database_url.get_secret_value()))
        return
    st = embedded_server(s).status()
    if not st.initialised:
        common.fail("the embedded server is not initialised yet: run `wedsync-db db start`")
    out.print(st.dsn())


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """Open psql on the database (extra arguments are passed to psql; the password travels in
    the environment, never on the command line)."""
    s = common.settings()
    env = dict(os.environ)
    if s.database_url is not None:
        target, secret = psql_target(s.database_url.get_secret_value())
        argv = ["psql", target]
        env.update(secret)
    else:
        server = embedded_server(s)
        with common.handled():
            argv = server.psql_command()
    raise typer.Exit(subprocess.call([*argv, *ctx.args], env=env))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        # output piped into e.g. `head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
