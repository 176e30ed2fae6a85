"""`wedsync-db token`: a development access token for a user (never in staging or production)."""

from __future__ import annotations

import enum
import sys
from typing import Annotated
from uuid import UUID

import typer
from pydantic import ValidationError

from wedsync_db.cli import common
from wedsync_db.identity import development_token
from wedsync_db.settings import Settings


class AudienceChoice(enum.StrEnum):
    couple = "couple"
    vendor = "vendor"


def token_command(
    user: Annotated[UUID, typer.Option("--user", help="The user id (the token's sub)")],
    audience: Annotated[
        AudienceChoice, typer.Option("--audience", help="couple (couple app) or vendor (portal)")
    ],
    ttl: Annotated[
        int, typer.Option("--ttl", min=60, max=86_400, help="Seconds until the token expires")
    ] = 3600,
    email: Annotated[str | None, typer.Option("--email", help="An email claim")] = None,
) -> None:
    """Print an HS256 access token signed with WEDSYNC_JWT_SECRET (development only).

    Only the token is printed, on stdout: `TOKEN=$(wedsync-db token --user ID --audience couple)`.
    """
    try:
        env = Settings().env
    except ValidationError:
        env = None  # the settings error is reported, by name, just below
    if env is not None and env != "development":
        common.fail(
            f"`wedsync-db token` mints development tokens only and WEDSYNC_ENV is {env}: "
            "there, access tokens come from the identity provider",
            code=2,
        )
    s = common.settings()
    if s.jwt_secret is None:
        common.fail(
            "WEDSYNC_JWT_SECRET is not set: set the same secret for the server and this command"
        )
    secret = s.jwt_secret.get_secret_value()
    token = development_token(secret, user, audience.value, ttl=ttl, email=email)
    sys.stdout.write(token + "\n")
