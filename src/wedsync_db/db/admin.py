"""Administrative statements that need the driver's help (kept inside the driver boundary)."""

from __future__ import annotations

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from wedsync_db.db.errors import awrap_errors
from wedsync_db.db.session import Session


async def set_role_password(s: Session, role: str, password: str) -> None:
    """Set a login role's password, hashed client-side (SCRAM) so that no server log or
    pg_stat_statements entry ever holds the clear text."""
    async with awrap_errors(s.pool):
        conn = s.connection
        hashed = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
        await conn.execute(
            sql.SQL("alter role {} password {}").format(
                sql.Identifier(role), sql.Literal(hashed.decode())
            )
        )


def psql_target(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN for psql's command line without its password, and the environment that carries
    the password instead (argv is visible to every user of the machine in ``ps``)."""
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    password = params.pop("password", None)
    env = {"PGPASSWORD": str(password)} if password else {}
    return make_conninfo("", **params), env
