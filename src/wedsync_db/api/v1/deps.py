"""What every data API route starts with: the user's verified identity, and its rate limits.

``Authorization: Bearer <access token>`` is verified (``wedsync_db.identity``) and becomes the
claims of a user scope: the routes run everything through ``as_user``, so row level security
decides what the user reads and writes. The service key is not a user token and gets 401 here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated
from uuid import UUID

from fastapi import Depends, HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wedsync_db.api.context import AppContext, get_context
from wedsync_db.api.v1.ratelimit import RateLimiter, charge
from wedsync_db.db.client import Claims, Database
from wedsync_db.identity import InvalidToken, TokenVerifier, verifier_for

_USER_BEARER = HTTPBearer(
    scheme_name="userToken",
    bearerFormat="JWT",
    description="A user's access token: `Authorization: Bearer <JWT>` (HS256 with "
    "WEDSYNC_JWT_SECRET, or RS256/ES256 from WEDSYNC_JWKS)",
    auto_error=False,
)
_STATE_KEY = "api.v1"
# how long a vendor user's organizations are remembered for the organization rate limit
ORGANIZATIONS_TTL = 60.0
MAX_REMEMBERED_USERS = 10_000


@dataclass
class DataApiState:
    """Per-application state of the data API: the token verifier and the rate limiters."""

    verifier: TokenVerifier
    per_user: RateLimiter
    per_organization: RateLimiter
    _organizations: dict[UUID, tuple[float, tuple[UUID, ...]]] = field(default_factory=dict)

    @classmethod
    def for_context(cls, ctx: AppContext) -> DataApiState:
        state = ctx.extras.get(_STATE_KEY)
        if state is None:
            s = ctx.settings
            state = ctx.extras[_STATE_KEY] = cls(
                verifier=verifier_for(s),
                per_user=RateLimiter(s.api_user_rate, s.api_user_burst),
                per_organization=RateLimiter(s.api_organization_rate, s.api_organization_burst),
            )
        assert isinstance(state, DataApiState)
        return state

    async def organizations_of(self, db: Database, claims: Claims) -> tuple[UUID, ...]:
        """The organizations a vendor user belongs to (remembered for a minute)."""
        if claims.aud != "vendor" or not self.per_organization.enabled:
            return ()
        now = time.monotonic()
        known = self._organizations.get(claims.sub)
        if known is not None and known[0] > now:
            return known[1]
        async with db.as_user(claims) as s:
            rows = await s.fetch_tuples("select wedsync.vendor_organization_ids()")
        found = tuple(r[0] for r in rows)
        if len(self._organizations) >= MAX_REMEMBERED_USERS:
            self._organizations.clear()
        self._organizations[claims.sub] = (now + ORGANIZATIONS_TTL, found)
        return found

    async def admit(self, db: Database, claims: Claims) -> int | None:
        """Charge one request to the user and its organizations: None, or seconds to wait."""
        charges = [(self.per_user, f"user:{claims.sub}")]
        for org in await self.organizations_of(db, claims):
            charges.append((self.per_organization, f"organization:{org}"))
        return charge(charges)


def _unauthorized(detail: str, error: str) -> HTTPException:
    return HTTPException(
        status_code=401,
        detail=detail,
        headers={"WWW-Authenticate": f'Bearer realm="wedsync-db", error="{error}"'},
    )


async def user_claims(
    ctx: Annotated[AppContext, Depends(get_context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_USER_BEARER)] = None,
) -> Claims:
    """Dependency: the verified claims of the user calling (401 without a valid token, 429
    over a rate limit)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized(
            "a user access token is required: Authorization: Bearer <token>", "invalid_request"
        )
    state = DataApiState.for_context(ctx)
    try:
        claims = Claims.coerce(await state.verifier.averify(credentials.credentials))
    except InvalidToken as exc:
        raise _unauthorized(str(exc), "invalid_token") from None
    wait = await state.admit(ctx.database, claims)
    if wait is not None:
        raise HTTPException(
            status_code=429,
            detail=f"too many requests: retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    return claims


UserClaims = Annotated[Claims, Depends(user_claims)]


def token_expiry(
    ctx: Annotated[AppContext, Depends(get_context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_USER_BEARER)] = None,
) -> float | None:
    """Dependency (beside :func:`user_claims`, which verifies the token): the time, in epoch
    seconds, after which the caller's token is no longer accepted (its ``exp`` and the
    verifier's leeway); None without a readable ``exp``."""
    if credentials is None:
        return None
    import jwt

    try:
        # read only: the token was verified by user_claims in this same request
        payload = jwt.decode(credentials.credentials, options={"verify_signature": False})
        return float(payload["exp"]) + ctx.settings.jwt_leeway
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None


TokenExpiry = Annotated[float | None, Depends(token_expiry)]
Context = Annotated[AppContext, Depends(get_context)]
