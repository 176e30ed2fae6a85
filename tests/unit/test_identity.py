"""Access tokens: the accept / reject matrix of claims_from_jwt, the JWKS cache and its
refreshes (served from a local HTTP server), and the development token command."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from typer.testing import CliRunner

from fixtures.environment import isolate_settings
from wedsync_db.cli.main import app
from wedsync_db.errors import ConfigError, InvalidClaims
from wedsync_db.identity import (
    InvalidToken,
    KeySet,
    TokenVerifier,
    claims_from_jwt,
    development_token,
)
from wedsync_db.settings import Settings

SECRET = "identity-test-jwt-secret-" + "0123456789abcdef" * 3
USER = uuid.UUID("5d2f6c1e-3b7a-4e8f-9a10-2b3c4d5e6f70")

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk(private: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
    data: dict[str, Any] = algorithm.to_jwk(private.public_key(), as_dict=True)
    return {**data, "kid": kid, "use": "sig"}


def jwks(*keys: dict[str, Any]) -> str:
    return json.dumps({"keys": list(keys)})


def payload(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": str(USER), "aud": "couple", "iat": now, "exp": now + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def token(key: Any = SECRET, alg: str = "HS256", kid: str | None = None, **changes: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload(**changes), key, algorithm=alg, headers=headers)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned(**changes: Any) -> str:
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload(**changes))}."


def refused(verifier: TokenVerifier, tok: str) -> InvalidToken:
    with pytest.raises(InvalidToken) as info:
        verifier.verify(tok)
    assert tok not in str(info.value) and SECRET not in str(info.value)
    return info.value


@pytest.fixture
def hs() -> TokenVerifier:
    return TokenVerifier(secret=SECRET, leeway=30)


# --- HS256 ------------------------------------------------------------------------------------
def test_a_valid_token_gives_the_claims_as_user_takes(hs: TokenVerifier) -> None:
    claims = hs.verify(token(aud="vendor", email="ana@example.com"))
    assert claims == {
        "sub": str(USER),
        "aud": "vendor",
        "role": "authenticated",
        "email": "ana@example.com",
    }
    assert isinstance(refused(hs, token(exp=1)), InvalidClaims)  # the API maps it to 401


def test_expiry_honours_the_leeway(hs: TokenVerifier) -> None:
    now = int(time.time())
    assert refused(hs, token(exp=now - 120, iat=now - 700)).check == "expired"
    assert hs.verify(token(exp=now - 10, iat=now - 700))["sub"] == str(USER)
    strict = TokenVerifier(secret=SECRET, leeway=0)
    assert refused(strict, token(exp=now - 10, iat=now - 700)).check == "expired"


def test_not_before_in_the_future_is_refused_beyond_the_leeway(hs: TokenVerifier) -> None:
    now = int(time.time())
    assert refused(hs, token(nbf=now + 120)).check == "not yet valid"
    assert refused(hs, token(iat=now + 120)).check == "not yet valid"
    assert hs.verify(token(nbf=now + 10))["aud"] == "couple"


def test_wrong_key_and_wrong_algorithms_are_refused(hs: TokenVerifier) -> None:
    assert refused(hs, token(key="another-secret-0123456789-0123456789-ab")).check == (
        "bad signature"
    )
    assert refused(hs, unsigned()).check == "algorithm not allowed"
    assert refused(hs, token(alg="HS512")).check == "algorithm not allowed"
    # an RS256 token needs a key set; without one RS256 is not allowed at all
    assert refused(hs, token(RSA_KEY, "RS256", kid="r1")).check == "algorithm not allowed"
    assert refused(hs, "not-a-token").check == "malformed"
    assert refused(hs, "x" * 20_000).check == "malformed"


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"sub": None}, "missing sub"),
        ({"exp": None}, "missing exp"),
        ({"aud": None}, "missing aud"),
        ({"sub": "ana"}, "sub"),
        ({"sub": 42}, "sub"),
        ({"aud": "billing"}, "audience"),
        ({"aud": ["vendor", "couple"]}, "audience"),
        ({"role": "service_role"}, "role"),
    ],
)
def test_required_claims(hs: TokenVerifier, changes: dict[str, Any], check: str) -> None:
    assert refused(hs, token(**changes)).check == check


def test_hs256_signed_with_the_rsa_public_key_never_verifies() -> None:
    """The classic confusion: the attacker HMACs with the public key the server trusts."""
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'r1'})}.{b64(payload())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    only_keys = TokenVerifier(jwks=jwks(jwk(RSA_KEY, "r1")))
    assert refused(only_keys, forged).check == "algorithm not allowed"
    both = TokenVerifier(secret=SECRET, jwks=jwks(jwk(RSA_KEY, "r1")))
    assert refused(both, forged).check == "bad signature"
    assert both.verify(token(RSA_KEY, "RS256", kid="r1"))["sub"] == str(USER)


# --- Supabase ---------------------------------------------------------------------------------
def supabase(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://abcdefgh.supabase.co/auth/v1",
        "sub": str(USER),
        "aud": "authenticated",
        "exp": now + 3600,
        "iat": now,
        "email": "ana@example.com",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"], "audience": "vendor"},
        "user_metadata": {"full_name": "Ana"},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    claims.update(changes)
    return claims


def test_supabase_tokens_are_accepted_as_issued(hs: TokenVerifier) -> None:
    tok = jwt.encode(supabase(), SECRET, algorithm="HS256")
    assert hs.verify(tok) == {
        "sub": str(USER),
        "aud": "vendor",
        "role": "authenticated",
        "email": "ana@example.com",
    }
    # ES256 from the project's JWKS, as newer Supabase projects sign
    es = TokenVerifier(jwks=jwks(jwk(EC_KEY, "sb-1")))
    tok = jwt.encode(supabase(), EC_KEY, algorithm="ES256", headers={"kid": "sb-1"})
    assert es.verify(tok)["aud"] == "vendor"


def test_the_audience_comes_from_aud_or_the_claim_path(hs: TokenVerifier) -> None:
    def sb(**changes: Any) -> str:
        return jwt.encode(supabase(**changes), SECRET, algorithm="HS256")

    assert hs.verify(sb(aud=["authenticated", "couple"], app_metadata={}))["aud"] == "couple"
    assert hs.verify(sb(aud=["authenticated", "vendor"]))["aud"] == "vendor"
    assert refused(hs, sb(app_metadata={"provider": "email"})).check == "audience"
    assert refused(hs, sb(app_metadata={"audience": "admin"})).check == "audience"
    assert refused(hs, sb(aud=["authenticated", "couple"])).check == "audience"  # conflicting
    custom = TokenVerifier(secret=SECRET, audience_claim="app_metadata.wedsync.audience")
    tok = sb(app_metadata={"wedsync": {"audience": "couple"}})
    assert custom.verify(tok)["aud"] == "couple"
    with pytest.raises(ConfigError, match="user_metadata"):
        TokenVerifier(secret=SECRET, audience_claim="user_metadata.audience")
    with pytest.raises(ConfigError, match="WEDSYNC_JWT_SECRET"):
        TokenVerifier()


def test_claims_from_jwt_reads_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    isolate_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("WEDSYNC_JWT_SECRET", SECRET)
    monkeypatch.setenv("WEDSYNC_JWT_AUDIENCE_CLAIM", "app_metadata.kind")
    monkeypatch.setenv("WEDSYNC_JWT_LEEWAY", "0")
    tok = jwt.encode(supabase(app_metadata={"kind": "couple"}), SECRET, algorithm="HS256")
    assert claims_from_jwt(tok)["aud"] == "couple"
    s = Settings()
    assert (s.jwt_leeway, s.jwks) == (0, None)
    assert claims_from_jwt(token(), s)["aud"] == "couple"
    assert claims_from_jwt(token(), s) == claims_from_jwt(token(), Settings())


# --- JWKS -------------------------------------------------------------------------------------
def test_rs256_and_es256_keys_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(jwks(jwk(RSA_KEY, "r1"), jwk(EC_KEY, "e1")))
    v = TokenVerifier(jwks=str(path))
    assert v.verify(token(RSA_KEY, "RS256", kid="r1"))["sub"] == str(USER)
    assert v.verify(token(EC_KEY, "ES256", kid="e1"))["sub"] == str(USER)
    assert refused(v, token(RSA_KEY_2, "RS256", kid="r1")).check == "bad signature"
    # the header's alg must be the key's: an ES256 header on the RSA key's kid is refused
    assert refused(v, token(EC_KEY, "ES256", kid="r1")).check == "algorithm not allowed"
    # no kid with two keys of different kinds: the one ES256 key is used
    assert v.verify(token(EC_KEY, "ES256"))["aud"] == "couple"


def test_symmetric_keys_in_a_key_set_are_ignored() -> None:
    oct_key = {"kty": "oct", "kid": "h1", "k": base64.urlsafe_b64encode(b"k" * 32).decode()}
    v = TokenVerifier(jwks=jwks(oct_key, jwk(EC_KEY, "e1")))
    assert v.algorithms == ["RS256", "ES256"]
    assert refused(v, token(b"k" * 32, "HS256", kid="h1")).check == "algorithm not allowed"


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 that counts its requests."""

    def __init__(self) -> None:
        self.document = jwks()
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = server.document.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/auth/v1/jwks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_new_kid_triggers_one_refresh(jwks_server: JwksServer) -> None:
    clock = Clock()
    keys = KeySet(jwks_server.url, min_refresh_interval=30, max_age=3600, clock=clock)
    v = TokenVerifier(jwks=keys)
    jwks_server.document = jwks(jwk(RSA_KEY, "2026-11"))
    assert v.verify(token(RSA_KEY, "RS256", kid="2026-11"))["sub"] == str(USER)
    assert v.verify(token(RSA_KEY, "RS256", kid="2026-11"))["sub"] == str(USER)
    assert jwks_server.hits == 1  # cached

    # the issuer rotates: the new kid reloads the set once
    jwks_server.document = jwks(jwk(RSA_KEY, "2026-11"), jwk(RSA_KEY_2, "2026-12"))
    clock.now += 31
    assert v.verify(token(RSA_KEY_2, "RS256", kid="2026-12"))["sub"] == str(USER)
    assert jwks_server.hits == 2

    # a kid still unknown after the refresh is refused; refreshes are rate-limited
    clock.now += 31
    assert refused(v, token(RSA_KEY_2, "RS256", kid="forged")).check == "unknown kid"
    assert jwks_server.hits == 3
    for _ in range(5):
        assert refused(v, token(RSA_KEY_2, "RS256", kid="forged-2")).check == "unknown kid"
    assert jwks_server.hits == 3

    # an old set is reloaded even for known kids, so a removed key stops working
    jwks_server.document = jwks(jwk(RSA_KEY_2, "2026-12"))
    clock.now += 3600
    assert refused(v, token(RSA_KEY, "RS256", kid="2026-11")).check == "unknown kid"
    assert jwks_server.hits == 4


async def test_averify_fetches_off_the_event_loop(jwks_server: JwksServer) -> None:
    jwks_server.document = jwks(jwk(EC_KEY, "e1"))
    v = TokenVerifier(jwks=jwks_server.url)
    tok = token(EC_KEY, "ES256", kid="e1", aud="vendor")
    assert v.keys is not None and v.keys.needs_load("e1", "ES256")
    assert (await v.averify(tok))["aud"] == "vendor"
    assert not v.keys.needs_load("e1", "ES256")
    assert (await v.averify(tok))["aud"] == "vendor"
    assert jwks_server.hits == 1


def test_an_unreachable_key_set_is_bounded_by_the_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/jwks"
        v = TokenVerifier(jwks=KeySet(url, timeout=0.3))
        started = time.monotonic()
        assert refused(v, token(EC_KEY, "ES256", kid="e1")).check == "key set unavailable"
        assert time.monotonic() - started < 3
    with pytest.raises(ConfigError, match="WEDSYNC_JWKS"):
        KeySet("file:///etc/jwks.json")


def test_neither_token_nor_secret_reaches_a_message_or_a_log(
    caplog: pytest.LogCaptureFixture, jwks_server: JwksServer
) -> None:
    caplog.set_level(logging.DEBUG)
    jwks_server.document = "{not json"
    v = TokenVerifier(secret=SECRET, jwks=f"{jwks_server.url}?token=abc", leeway=0)
    now = int(time.time())
    tokens = [
        token(exp=now - 5),
        token(nbf=now + 60),
        token(key="x" * 40),
        token(sub=None),
        token(aud="nobody"),
        token(alg="HS384"),
        token(EC_KEY, "ES256", kid="e1"),
        unsigned(),
        token()[:-2],
    ]
    messages = [str(refused(v, tok)) for tok in tokens]
    assert len(set(messages)) == len(messages)  # each names its own check
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "access token refused" in logged and "could not be loaded" in logged
    for text in [*tokens, SECRET, "token=abc"]:
        assert text not in logged
        assert all(text not in m for m in messages)


# --- development tokens -----------------------------------------------------------------------
def test_development_tokens_verify() -> None:
    tok = development_token(SECRET, USER, "vendor", ttl=120, email="v@example.com")
    claims = TokenVerifier(secret=SECRET).verify(tok)
    assert claims == {
        "sub": str(USER),
        "aud": "vendor",
        "role": "authenticated",
        "email": "v@example.com",
    }
    old = development_token(SECRET, USER, "vendor", ttl=60, now=time.time() - 3600)
    assert refused(TokenVerifier(secret=SECRET), old).check == "expired"


def test_token_command_prints_only_the_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    isolate_settings(monkeypatch, tmp_path)
    runner = CliRunner()
    args = ["token", "--user", str(USER), "--audience", "couple"]
    # development without a secret: one is generated in the data directory, which the server
    # started with the same settings reads too, so the token verifies there
    generated = runner.invoke(app, args)
    assert generated.exit_code == 0, generated.output
    kept = tmp_path / "data" / "jwt_secret"
    assert kept.stat().st_mode & 0o777 == 0o600
    secret = kept.read_text().strip()
    assert secret not in generated.output
    assert TokenVerifier(secret=secret).verify(generated.stdout.strip())["sub"] == str(USER)
    # with a JWKS (tokens come from an identity provider) nothing is generated
    monkeypatch.setenv("WEDSYNC_JWKS", '{"keys": []}')
    kept.unlink()
    missing = runner.invoke(app, args)
    assert missing.exit_code == 1 and "WEDSYNC_JWT_SECRET" in missing.output
    assert not kept.exists()
    monkeypatch.delenv("WEDSYNC_JWKS")

    monkeypatch.setenv("WEDSYNC_JWT_SECRET", SECRET)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    tok = result.stdout.strip()
    assert result.stdout == tok + "\n"
    assert TokenVerifier(secret=SECRET).verify(tok)["aud"] == "couple"
    # a user that is not a uuid and an unknown audience are usage errors
    assert runner.invoke(app, ["token", "--user", "ana", "--audience", "couple"]).exit_code == 64
    assert runner.invoke(app, [*args[:3], "--audience", "admin"]).exit_code == 64

    for env in ("staging", "production"):
        monkeypatch.setenv("WEDSYNC_ENV", env)
        refused_run = runner.invoke(app, args)
        assert refused_run.exit_code == 2
        assert "development tokens only" in refused_run.output and env in refused_run.output
        assert refused_run.stdout == "" and SECRET not in refused_run.output
