"""Request bodies: bounded in size, and read only by handlers that asked for them.

Handlers that take a body read it themselves with :func:`read_body` after their dependencies
(authentication first) have run: FastAPI reads a declared body parameter before it resolves
dependencies, so an unauthenticated client could otherwise make the server read and parse a
body it then refuses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wedsync_db.api.problems import problem

M = TypeVar("M", bound=BaseModel)


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class RouteLimit:
    """A body limit of its own for the paths ``pattern`` matches (file uploads), named by its
    setting in the 413."""

    pattern: re.Pattern[str]
    max_bytes: int
    setting: str


class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (or the limit of a route in
    ``routes``), told by Content-Length before any of it is read, or counted while a chunked
    body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int, routes: Sequence[RouteLimit] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.routes = tuple(routes)

    def _limit(self, scope: Scope) -> tuple[int, str]:
        path = scope.get("path", "")
        for route in self.routes:
            if route.pattern.fullmatch(path):
                return route.max_bytes, route.setting
        return self.max_bytes, "WEDSYNC_MAX_BODY_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, setting = self._limit(scope)
        declared = _content_length(scope)
        if declared == -1:
            await self._respond(scope, receive, send, 400, "Bad request", "invalid Content-Length")
            return
        if declared is not None and declared > max_bytes:
            await self._too_large(scope, receive, send, max_bytes, setting)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._too_large(scope, receive, send, max_bytes, setting)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, max_bytes: int, setting: str
    ) -> None:
        await self._respond(
            scope,
            receive,
            send,
            413,
            "Content too large",
            f"request bodies are limited to {max_bytes:,} bytes ({setting})",
        )

    @staticmethod
    async def _respond(
        scope: Scope, receive: Receive, send: Send, status: int, title: str, detail: str
    ) -> None:
        response = problem(status, title, detail, headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length; None when absent, -1 when malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None


async def read_body(request: Request, model: type[M]) -> M:
    """The JSON body as ``model`` (unknown fields refused); 422 names what is wrong."""
    raw = await request.body()
    try:
        data: Any = json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"the body is not valid JSON: {exc}", "type": "json"}]
        ) from None
    if not isinstance(data, dict):
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "the body must be a JSON object", "type": "dict_type"}]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
