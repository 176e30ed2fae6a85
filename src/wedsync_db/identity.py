"""Identity: verify a user's access token and map it to the claims ``Database.as_user`` takes.

``claims_from_jwt(token)`` checks the signature (HS256 with ``WEDSYNC_JWT_SECRET``; RS256 or
ES256 with a key from ``WEDSYNC_JWKS``), ``exp`` / ``nbf`` / ``iat`` with a leeway, the
presence of ``exp``, ``sub`` and ``aud``, and returns ``{"sub", "aud", "role"[, "email"]}``
with ``aud`` the WedSync audience (``vendor`` | ``couple``). Supabase tokens are accepted as
issued: ``aud`` may be ``"authenticated"`` or a list, and the WedSync audience is then read from
a claim path (``WEDSYNC_JWT_AUDIENCE_CLAIM``, default ``app_metadata.audience``).

Every refusal is an :class:`InvalidToken` naming the failed check; neither the token nor a
key ever appears in a message or a log record.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import jwt
from jwt import PyJWK

from wedsync_db.errors import ConfigError, InvalidClaims
from wedsync_db.settings import Settings, load_settings

log = logging.getLogger(__name__)

Audience = Literal["vendor", "couple"]
AUDIENCES: tuple[Audience, ...] = ("vendor", "couple")
# the JWT ``aud`` values a token may carry: ours, or Supabase's for signed-in users
ACCEPTED_JWT_AUDIENCES = ("vendor", "couple", "authenticated")
# the only algorithms ever accepted; each is bound to one kind of key
ASYMMETRIC_ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}
SYMMETRIC_ALGORITHM = "HS256"
DEFAULT_AUDIENCE_CLAIM = "app_metadata.audience"
USER_ROLES = ("authenticated", "anon")
REQUIRED_CLAIMS = ("exp", "sub", "aud")

MAX_TOKEN_CHARS = 16_384
MAX_JWKS_BYTES = 1_048_576
JWKS_TIMEOUT = 5.0  # seconds, for each network step of a JWKS fetch
JWKS_MIN_REFRESH_INTERVAL = 30.0  # an unknown kid reloads the key set at most this often
JWKS_MAX_AGE = 3600.0  # a URL's key set is reloaded when older than this (removed keys go)

_SAFE_WORD = re.compile(r"[A-Za-z0-9_.-]{1,40}")


class InvalidToken(InvalidClaims):
    """An access token was refused; ``check`` names the check that failed (``expired``, ``not
    yet valid``, ``bad signature``, ``unknown kid``, ``algorithm not allowed``, ``missing sub``,
    ``audience``, ...). The message never contains the token or a key."""

    def __init__(self, check: str, detail: str = "") -> None:
        self.check = check
        super().__init__(f"invalid token: {check}" + (f" ({detail})" if detail else ""))


def _safe(value: object) -> str:
    """A header or claim value fit for a message: short words only, anything else elided."""
    if isinstance(value, str) and _SAFE_WORD.fullmatch(value):
        return repr(value)
    return "<redacted>"


# --- key sets ---------------------------------------------------------------------------------
def _describe_source(source: str) -> str:
    """Where a key set comes from, fit for a log line (no URL credentials or query)."""
    if source.lstrip().startswith("{"):
        return "inline JWKS"
    if "://" in source:
        parts = urlsplit(source)
        return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))
    return source


def parse_jwks(document: str | bytes) -> dict[str, list[PyJWK]]:
    """The usable signing keys of a JWKS document by kid (``""`` for keys without one).

    Keys that are not RS256 / ES256 signing keys are left out, symmetric (``oct``) keys
    always: a key set is public, so a secret in it would be a leak, not a key."""
    data = json.loads(document)
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError("a JWKS document is an object with a 'keys' list")
    keys: dict[str, list[PyJWK]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") not in ASYMMETRIC_ALGORITHMS.values():
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(entry)
        except jwt.PyJWTError:
            log.warning("JWKS key %s left out: not a usable key", _safe(entry.get("kid")))
            continue
        if key.algorithm_name not in ASYMMETRIC_ALGORITHMS:
            continue
        kid = entry.get("kid")
        keys.setdefault(kid if isinstance(kid, str) else "", []).append(key)
    return keys


class KeySet:
    """The public keys of a JWKS file, URL or inline document, loaded on first use and cached.

    An unknown ``kid`` reloads the set (a key rotation), at most once per
    ``min_refresh_interval`` so that forged kids cannot make us hammer the issuer; a URL's set
    is also reloaded when older than ``max_age``. A failed reload keeps the keys already known.
    URLs are fetched over http(s) only, with ``timeout`` on every network step."""

    def __init__(
        self,
        source: str,
        *,
        timeout: float = JWKS_TIMEOUT,
        min_refresh_interval: float = JWKS_MIN_REFRESH_INTERVAL,
        max_age: float = JWKS_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        source = source.strip()
        self.inline = source.startswith("{")
        self.url = source.startswith(("http://", "https://"))
        if not (self.inline or self.url) and "://" in source:
            raise ConfigError("WEDSYNC_JWKS", "must be a file path, an http(s) URL or JSON")
        self.source = source
        self.timeout = timeout
        self.min_refresh_interval = min_refresh_interval
        self.max_age = max_age
        self._clock = clock
        self._keys: dict[str, list[PyJWK]] | None = None
        self._loaded_at = 0.0
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        self.loads = 0  # successful loads, for tests and metrics

    def __repr__(self) -> str:
        return f"KeySet({_describe_source(self.source)})"

    def _read(self) -> bytes:
        if self.inline:
            return self.source.encode()
        if not self.url:
            return Path(self.source).expanduser().read_bytes()[: MAX_JWKS_BYTES + 1]
        opener = urllib.request.OpenerDirector()
        for handler in (
            urllib.request.ProxyHandler(),
            urllib.request.HTTPHandler(),
            urllib.request.HTTPSHandler(),
            urllib.request.HTTPRedirectHandler(),  # to http(s) only: no other handler exists
            urllib.request.HTTPDefaultErrorHandler(),
            urllib.request.HTTPErrorProcessor(),
        ):
            opener.add_handler(handler)
        request = urllib.request.Request(
            self.source, headers={"Accept": "application/json", "User-Agent": "wedsync-db"}
        )
        with opener.open(request, timeout=self.timeout) as response:
            body: bytes = response.read(MAX_JWKS_BYTES + 1)
        return body

    def _load(self, why: str) -> None:
        """Reload the set (the caller holds the lock); on failure keep what is known."""
        self._attempted_at = self._clock()
        where = _describe_source(self.source)
        try:
            body = self._read()
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError(f"larger than {MAX_JWKS_BYTES} bytes")
            keys = parse_jwks(body)
        except (OSError, ValueError) as exc:
            # the reason is the transport's or the parser's, never a key
            log.warning("JWKS from %s could not be loaded (%s): %s", where, why, type(exc).__name__)
            return
        self._keys = keys
        self._loaded_at = self._attempted_at
        self.loads += 1
        count = sum(len(v) for v in keys.values())
        log.info("JWKS loaded from %s (%s): %d signing keys", where, why, count)

    def _may_reload(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= self.min_refresh_interval
        )

    def _expired(self) -> bool:
        return self.url and self._clock() - self._loaded_at >= self.max_age

    def _find(self, kid: str | None, algorithm: str) -> list[PyJWK] | None:
        """The candidate keys for a token, or None when the kid is unknown."""
        keys = self._keys or {}
        if kid is not None:
            found = keys.get(kid)
            return None if found is None else found
        # no kid: acceptable only while the set holds a single key for the algorithm
        candidates = [k for ks in keys.values() for k in ks if k.algorithm_name == algorithm]
        return candidates if len(candidates) == 1 else None

    def needs_load(self, kid: str | None, algorithm: str) -> bool:
        """Whether finding this token's key may mean reading the source (a fetch)."""
        if self._keys is None or self._expired():
            return self._may_reload()
        return self._find(kid, algorithm) is None and self._may_reload()

    def keys_for(self, kid: str | None, algorithm: str) -> list[PyJWK]:
        """The keys a token with this header may be signed with; raises InvalidToken."""
        with self._lock:
            if self._keys is None or self._expired():
                if self._may_reload():
                    self._load("first use" if self._keys is None else "expired")
                if self._keys is None:
                    raise InvalidToken("key set unavailable", "the JWKS could not be loaded")
            found = self._find(kid, algorithm)
            if found is None and self._may_reload():
                self._load("unknown kid")
                found = self._find(kid, algorithm)
        if found is None:
            if kid is None:
                raise InvalidToken("unknown kid", "the token names no kid")
            raise InvalidToken("unknown kid", f"no key {_safe(kid)} in the JWKS")
        matching = [k for k in found if k.algorithm_name == algorithm]
        if not matching:
            raise InvalidToken("algorithm not allowed", f"the key is not an {algorithm} key")
        return matching


# --- verification -----------------------------------------------------------------------------
_CHECKS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not yet valid"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAudienceError, "audience"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.exceptions.InvalidSubjectError, "sub"),
    (jwt.InvalidIssuedAtError, "iat"),
    (jwt.InvalidKeyError, "key"),
    (jwt.DecodeError, "malformed"),
)


def _check_of(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing {exc.claim}"
    return next((name for cls, name in _CHECKS if isinstance(exc, cls)), "invalid")


def _claim_at(payload: Mapping[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class TokenVerifier:
    """Verifies access tokens with a fixed configuration; build one per application (the
    JWKS cache lives here) and call :meth:`verify` or :meth:`averify`."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks: str | KeySet | None = None,
        leeway: float = 30.0,
        audience_claim: str = DEFAULT_AUDIENCE_CLAIM,
        accepted_audiences: Sequence[str] = ACCEPTED_JWT_AUDIENCES,
    ) -> None:
        if not secret and jwks is None:
            raise ConfigError(
                "WEDSYNC_JWT_SECRET", "is not set (nor WEDSYNC_JWKS): no token can be verified"
            )
        path = audience_claim.strip()
        if not path or any(not part for part in path.split(".")):
            raise ConfigError("WEDSYNC_JWT_AUDIENCE_CLAIM", "must be a dotted claim path")
        if path.split(".")[0] == "user_metadata":
            # Supabase users edit their own user_metadata: it cannot say who they are
            raise ConfigError(
                "WEDSYNC_JWT_AUDIENCE_CLAIM", "must not be in user_metadata (users can edit it)"
            )
        self._secret = secret or None
        self.keys = KeySet(jwks) if isinstance(jwks, str) else jwks
        self.leeway = leeway
        self.audience_claim = path
        self.accepted_audiences = list(accepted_audiences)
        self.algorithms = ([SYMMETRIC_ALGORITHM] if self._secret else []) + (
            list(ASYMMETRIC_ALGORITHMS) if self.keys is not None else []
        )

    def __repr__(self) -> str:
        return f"TokenVerifier(algorithms={self.algorithms}, keys={self.keys!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        return cls(
            secret=secret,
            jwks=(settings.jwks or "").strip() or None,
            leeway=settings.jwt_leeway,
            audience_claim=settings.jwt_audience_claim,
        )

    def _header(self, token: str) -> tuple[str, str | None]:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("malformed", "not a compact JWS of a sensible size")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed", "the header is not valid JSON in base64url") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            allowed = ", ".join(self.algorithms)
            raise InvalidToken("algorithm not allowed", f"{_safe(alg)}; allowed: {allowed}")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed", "kid is not a string")
        return alg, kid

    def verify(self, token: str) -> dict[str, str]:
        """The claims for ``as_user`` from a verified token; raises :class:`InvalidToken`.
        May read the JWKS source (with a timeout): from async code use :meth:`averify`."""
        try:
            return self._verify(token)
        except InvalidToken as exc:
            log.debug("access token refused: %s", exc.check)
            raise

    async def averify(self, token: str) -> dict[str, str]:
        """:meth:`verify` that reads the JWKS source in a worker thread when it has to."""
        alg, kid = self._header(token)
        if self.keys is not None and alg != SYMMETRIC_ALGORITHM and self.keys.needs_load(kid, alg):
            return await asyncio.to_thread(self.verify, token)
        return self.verify(token)

    def _verify(self, token: str) -> dict[str, str]:
        alg, kid = self._header(token)
        keys: Iterable[Any]
        if alg == SYMMETRIC_ALGORITHM:
            keys = [self._secret]
        else:
            assert self.keys is not None
            keys = self.keys.keys_for(kid, alg)
        payload: dict[str, Any] | None = None
        for key in keys:  # several keys may share a kid (or have none) during a rotation
            try:
                payload = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    audience=self.accepted_audiences,
                    leeway=self.leeway,
                    options={"require": list(REQUIRED_CLAIMS)},
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise InvalidToken(_check_of(exc)) from None
        if payload is None:
            raise InvalidToken("bad signature")
        return self._claims(payload)

    def _claims(self, payload: Mapping[str, Any]) -> dict[str, str]:
        try:
            sub = str(UUID(payload["sub"]))
        except (ValueError, TypeError, AttributeError):
            raise InvalidToken("sub", "must be a user id (uuid)") from None
        role = payload.get("role", "authenticated")
        if role not in USER_ROLES:
            raise InvalidToken("role", f"{_safe(role)} cannot open a user scope")
        claims = {"sub": sub, "aud": self._audience(payload), "role": role}
        email = payload.get("email")
        if isinstance(email, str) and email:
            claims["email"] = email
        return claims

    def _audience(self, payload: Mapping[str, Any]) -> str:
        """The WedSync audience: from ``aud`` and/or the configured claim path, which must
        agree; exactly one of vendor / couple."""
        aud = payload.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        found = {a for a in auds if a in AUDIENCES}
        extra = _claim_at(payload, self.audience_claim)
        if extra is not None:
            if extra not in AUDIENCES:
                raise InvalidToken("audience", f"{self.audience_claim} must be vendor or couple")
            found.add(extra)
        if len(found) != 1:
            why = "conflicting" if found else "no"
            raise InvalidToken(
                "audience", f"{why} vendor / couple audience in aud or {self.audience_claim}"
            )
        return found.pop()


@functools.lru_cache(maxsize=8)
def _verifier(secret: str | None, jwks: str | None, leeway: float, claim: str) -> TokenVerifier:
    return TokenVerifier(secret=secret, jwks=jwks, leeway=leeway, audience_claim=claim)


def verifier_for(settings: Settings) -> TokenVerifier:
    """The verifier for these settings, shared by every caller with the same configuration
    (so the JWKS is cached once)."""
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    jwks = (settings.jwks or "").strip() or None
    return _verifier(secret, jwks, settings.jwt_leeway, settings.jwt_audience_claim)


def claims_from_jwt(token: str, settings: Settings | None = None) -> dict[str, str]:
    """Verify a user's access token; the claims to open ``Database.as_user(claims)`` with.

    Raises :class:`InvalidToken` naming the failed check, or ConfigError when neither
    ``WEDSYNC_JWT_SECRET`` nor ``WEDSYNC_JWKS`` is set."""
    return verifier_for(settings or load_settings()).verify(token)


def development_token(
    secret: str,
    user_id: UUID,
    audience: Audience,
    *,
    ttl: int = 3600,
    email: str | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token for a development user, as :func:`claims_from_jwt` accepts it."""
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "aud": audience,
        "role": "authenticated",
        "iat": issued,
        "exp": issued + ttl,
        "iss": "wedsync-db development",
    }
    if email:
        payload["email"] = email
    return jwt.encode(payload, secret, algorithm=SYMMETRIC_ALGORITHM)
