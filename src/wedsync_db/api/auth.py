"""Service-key authentication: ``Authorization: Bearer <key>`` or ``apikey: <key>``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from wedsync_db.api.context import AppContext, get_context

# the two ways to present the key, declared for the OpenAPI document (either one will do);
# the check itself is presented_key() below
_BEARER = HTTPBearer(
    scheme_name="serviceKey",
    description="The service key as `Authorization: Bearer <key>`",
    auto_error=False,
)
_APIKEY = APIKeyHeader(
    name="apikey",
    scheme_name="serviceKeyHeader",
    description="The service key as an `apikey: <key>` header",
    auto_error=False,
)


def presented_key(request: Request) -> str | None:
    """The key the client sent, if any."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    api_key = request.headers.get("apikey")
    return api_key.strip() if api_key else None


def is_service_request(request: Request, ctx: AppContext) -> bool:
    """True when the request carries the valid service key (constant-time compare)."""
    key = presented_key(request)
    if key is None:
        return False
    return hmac.compare_digest(key.encode(), ctx.service_key.encode())


async def require_service_key(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_context)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
    _apikey: Annotated[str | None, Security(_APIKEY)] = None,
) -> None:
    """Dependency: 401 unless the service key is presented."""
    if not is_service_request(request, ctx):
        raise HTTPException(
            status_code=401,
            detail="a valid service key is required (Authorization: Bearer <key> or apikey header)",
            headers={"WWW-Authenticate": 'Bearer realm="wedsync-db"'},
        )


ServiceKey = Depends(require_service_key)
