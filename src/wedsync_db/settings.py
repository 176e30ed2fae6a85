"""Settings: environment profiles, validation at start-up, redaction of secrets.

Everything comes from ``WEDSYNC_*`` variables (plus ``DATABASE_URL`` / ``DIRECT_DATABASE_URL``)
and an optional ``.env``. Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wedsync_db.errors import ConfigError

Environment = Literal["development", "staging", "production"]
FreezeMode = Literal["off", "warn", "enforce"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Service keys that ship in examples and templates; production refuses them.
KNOWN_DEFAULT_KEYS = frozenset(
    {
        "changethis",
        "changeme",
        "secret",
        "service-key",
        "service_key",
        "your-service-key",
        "wedsync",
        "wedsync-dev-service-key",
        "super-secret-jwt-token-with-at-least-32-characters-long",
    }
)
MIN_KEY_LENGTH = 32


@dataclass(frozen=True)
class Profile:
    """Defaults that differ per environment (SPEC §1)."""

    connection_budget: int
    backup_retention_days: int
    history_retention_days: int
    freeze_mode: FreezeMode
    tls_required: bool


PROFILES: dict[str, Profile] = {
    "development": Profile(10, 1, 7, "off", False),
    "staging": Profile(20, 3, 30, "warn", True),
    "production": Profile(100, 7, 90, "enforce", True),
}


class Settings(BaseSettings):
    """Validated configuration. Fields left as None take the environment profile's default."""

    model_config = SettingsConfigDict(
        env_prefix="WEDSYNC_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    env: Environment = "development"
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "WEDSYNC_DATABASE_URL")
    )
    direct_database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DIRECT_DATABASE_URL", "WEDSYNC_DIRECT_DATABASE_URL"),
    )
    # the user pool's login; derived from DATABASE_URL with the authenticator role when unset
    user_database_url: SecretStr | None = None
    service_key: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    authenticator_password: SecretStr | None = None
    timezone: str = "Europe/London"
    data_dir: Path = Path(".wedsync")
    pooler: Literal["none", "transaction"] = "none"

    connection_budget: int | None = Field(default=None, ge=2)
    user_pool_share: float = Field(default=0.8, gt=0, lt=1)
    pool_timeout: float = Field(default=5.0, gt=0)
    # the longest the clients wait for any answer from the server (a statement, COMMIT); on
    # expiry the connection is closed and the call raises DatabaseUnavailable
    query_timeout: float = Field(default=60.0, gt=0)
    pool_max_waiting: int = Field(default=200, ge=0)
    pool_max_lifetime: float = Field(default=1800.0, gt=0)
    pool_check_after: float = Field(default=1.0, ge=0)
    heartbeat_interval: float = Field(default=30.0, gt=0)
    heartbeat_window: int = Field(default=120, ge=1)

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    metrics_token: SecretStr | None = None
    sample_interval: float = Field(default=60.0, gt=0)
    # /metrics serves the cached snapshot when younger than this, else refreshes cheap parts
    metrics_max_age: float = Field(default=5.0, ge=0)
    # request bodies the HTTP API accepts (413 beyond)
    max_body_bytes: int = Field(default=1_048_576, gt=0, le=1_073_741_824)
    history_retention_days: int | None = Field(default=None, ge=1)
    backup_retention_days: int | None = Field(default=None, ge=1)
    # the backup repository (WAL archive, base backups, metadata); default <data dir>/backups
    backup_dir: Path | None = None
    # where the server's pg_basebackup & co. are, when they are not found by themselves
    pg_bin_dir: Path | None = None
    # `up` takes a backup / verifies the newest one this often (0: never); None: the profile's
    backup_every_hours: float | None = Field(default=None, ge=0)
    backup_verify_every_hours: float | None = Field(default=None, ge=0)
    disk_budget_gb: float = Field(default=50.0, gt=0)

    freeze_mode: FreezeMode | None = None
    freeze_weekdays: str = "sat"
    peak_months: str = "5-10"
    maintenance_window: str = "01:00-05:00"
    maintenance_weekdays: str = "mon-thu"
    # extra freeze windows, e.g. "2026-12-24/2026-12-27 christmas, 2027-06-01/2027-06-02 launch"
    freeze_windows: str = ""
    migration_lock_wait: float = Field(default=60.0, ge=0)
    migration_lock_timeout: float = Field(default=2.0, gt=0)
    migration_statement_timeout: float = Field(default=600.0, gt=0)
    migration_retry_budget: float = Field(default=120.0, ge=0)

    @field_validator(
        "database_url",
        "direct_database_url",
        "user_database_url",
        "service_key",
        "jwt_secret",
        "authenticator_password",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `export DATABASE_URL=` means "no database URL", as in most tools
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r} (use an IANA name)") from exc
        return value

    @field_validator("freeze_weekdays", "maintenance_weekdays")
    @classmethod
    def _weekdays(cls, value: str) -> str:
        parse_weekdays(value)
        return value

    @field_validator("peak_months")
    @classmethod
    def _months(cls, value: str) -> str:
        parse_months(value)
        return value

    @field_validator("maintenance_window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_time_window(value)
        return value

    # --- profile-derived values -------------------------------------------------------------
    @property
    def profile(self) -> Profile:
        """The defaults of the current environment."""
        return PROFILES[self.env]

    @property
    def effective_connection_budget(self) -> int:
        return self.connection_budget or self.profile.connection_budget

    @property
    def effective_freeze_mode(self) -> FreezeMode:
        return self.freeze_mode or self.profile.freeze_mode

    @property
    def effective_history_retention_days(self) -> int:
        return self.history_retention_days or self.profile.history_retention_days

    @property
    def effective_backup_retention_days(self) -> int:
        return self.backup_retention_days or self.profile.backup_retention_days

    @property
    def effective_backup_dir(self) -> Path:
        """The backup repository."""
        return (self.backup_dir or self.data_dir / "backups").expanduser().absolute()

    @property
    def effective_backup_every_hours(self) -> float:
        """How often `up` takes a backup (0: it does not): daily outside development."""
        if self.backup_every_hours is not None:
            return self.backup_every_hours
        return 0.0 if self.env == "development" else 24.0

    @property
    def effective_backup_verify_every_hours(self) -> float:
        """How often `up` verifies the newest backup (0: it does not)."""
        if self.backup_verify_every_hours is not None:
            return self.backup_verify_every_hours
        return 0.0 if self.env == "development" else 24.0

    @property
    def uses_embedded(self) -> bool:
        """True when no DATABASE_URL is configured and the embedded server is used."""
        return self.database_url is None

    @property
    def pool_sizes(self) -> tuple[int, int]:
        """(user, service) pool maximum sizes from the connection budget."""
        budget = self.effective_connection_budget
        user = max(1, round(budget * self.user_pool_share))
        service = max(1, budget - user)
        return user, service

    def resolved_service_key(self) -> str:
        """The service key; callers must never log or print it."""
        if self.service_key is None:
            raise ConfigError("WEDSYNC_SERVICE_KEY", "is not set")
        return self.service_key.get_secret_value()

    def redacted(self) -> dict[str, Any]:
        """Every setting with secrets replaced, for `config show`."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                if name.endswith("url"):
                    out[name] = redact_dsn(value.get_secret_value())
                else:
                    out[name] = "********"
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        out["effective_connection_budget"] = self.effective_connection_budget
        out["effective_freeze_mode"] = self.effective_freeze_mode
        out["effective_history_retention_days"] = self.effective_history_retention_days
        out["effective_backup_retention_days"] = self.effective_backup_retention_days
        out["pool_sizes"] = {"user": self.pool_sizes[0], "service": self.pool_sizes[1]}
        return out

    # identity (wedsync_db.identity): RS256/ES256 keys as a JWKS file, http(s) URL or inline
    # JSON; the clock leeway for exp/nbf/iat; where a token carries the vendor/couple audience
    jwks: str | None = None
    jwt_leeway: float = Field(default=30.0, ge=0, le=600)
    jwt_audience_claim: str = "app_metadata.audience"


# --- parsing helpers (pure) -----------------------------------------------------------------
def parse_weekdays(value: str) -> frozenset[int]:
    """Parse ``"sat"``, ``"fri,sat"`` or ``"mon-thu"`` into ISO weekday numbers (Mon=0)."""
    days: set[int] = set()
    for part in (p.strip().lower() for p in value.split(",")):
        if not part:
            continue
        if "-" in part:
            start, end = (x.strip()[:3] for x in part.split("-", 1))
            if start not in WEEKDAYS or end not in WEEKDAYS:
                raise ValueError(f"unknown weekday range {part!r} (use mon..sun)")
            a, b = WEEKDAYS.index(start), WEEKDAYS.index(end)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        else:
            if part[:3] not in WEEKDAYS:
                raise ValueError(f"unknown weekday {part!r} (use mon..sun)")
            days.add(WEEKDAYS.index(part[:3]))
    return frozenset(days)


def parse_months(value: str) -> frozenset[int]:
    """Parse ``"5-10"`` or ``"6,7,8"`` into month numbers; an empty string means none."""
    months: set[int] = set()
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                rng = range(a, b + 1) if a <= b else [*range(a, 13), *range(1, b + 1)]
                months.update(rng)
            else:
                months.add(int(part))
        except ValueError as exc:
            raise ValueError(f"bad month list {value!r} (use e.g. 5-10)") from exc
    if any(m < 1 or m > 12 for m in months):
        raise ValueError(f"months must be between 1 and 12: {value!r}")
    return frozenset(months)


def parse_time_window(value: str) -> tuple[time, time]:
    """Parse ``"01:00-05:00"``; an end before the start wraps past midnight."""
    try:
        start, end = (time.fromisoformat(x.strip()) for x in value.split("-", 1))
    except ValueError as exc:
        raise ValueError(f"bad time window {value!r} (use HH:MM-HH:MM)") from exc
    return start, end


_SECRET_KEYS = ("password", "sslpassword")


def _kv_tokens(dsn: str) -> list[tuple[str, str, int, int]]:
    """libpq key=value conninfo as (key, value, value start, value end); spaces may surround
    '=' and a value may be single-quoted with backslash escapes."""
    tokens: list[tuple[str, str, int, int]] = []
    i, n = 0, len(dsn)
    while i < n:
        while i < n and dsn[i].isspace():
            i += 1
        start = i
        while i < n and not dsn[i].isspace() and dsn[i] != "=":
            i += 1
        key = dsn[start:i]
        while i < n and dsn[i].isspace():
            i += 1
        if not key or i >= n or dsn[i] != "=":
            raise ValueError("not a key=value connection string")
        i += 1
        while i < n and dsn[i].isspace():
            i += 1
        vstart = i
        value = []
        if i < n and dsn[i] == "'":
            i += 1
            while i < n and dsn[i] != "'":
                if dsn[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(dsn[i])
                i += 1
            i += 1  # closing quote
        else:
            while i < n and not dsn[i].isspace():
                if dsn[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(dsn[i])
                i += 1
        tokens.append((key, "".join(value), vstart, i))
    return tokens


def redact_dsn(dsn: str) -> str:
    """Replace the password of a postgres URL or key/value DSN with ``****``."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":****"
            netloc = f"{userinfo}@{host}"
        query = "&".join(
            f"{k}={'****' if k.lower() in _SECRET_KEYS else v}"
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    try:
        tokens = _kv_tokens(dsn)
    except ValueError:
        # unparseable: show nothing that could be a secret
        return "<unparseable connection string>"
    out, last = [], 0
    for key, _, vstart, vend in tokens:
        if key.lower() in _SECRET_KEYS:
            out.append(dsn[last:vstart] + "****")
            last = vend
    out.append(dsn[last:])
    return "".join(out)


def dsn_host_is_local(dsn: str) -> bool:
    """True when the DSN targets a Unix socket or a loopback address."""
    params = dsn_params(dsn)
    hosts = [h for h in (params.get("host") or "").split(",") if h] or [""]
    for host in hosts:
        if host == "" or host.startswith("/") or host.startswith("@") or host == "localhost":
            continue
        try:
            if ipaddress.ip_address(host.strip("[]")).is_loopback:
                continue
        except ValueError:
            pass
        return False
    return True


def dsn_params(dsn: str) -> dict[str, str]:
    """The host and query/keyword parameters of a DSN, without the driver."""
    params: dict[str, str] = {}
    if "://" in dsn:
        parts = urlsplit(dsn)
        params.update(dict(parse_qsl(parts.query, keep_blank_values=True)))
        if parts.hostname and "host" not in params:
            params["host"] = parts.hostname
    else:
        for key, value, _, _ in _kv_tokens(dsn):
            params[key] = value
    return params


# --- start-up validation --------------------------------------------------------------------
def _env_name(field: str) -> str:
    if field == "database_url":
        return "DATABASE_URL"
    if field == "direct_database_url":
        return "DIRECT_DATABASE_URL"
    return f"WEDSYNC_{field.upper()}"


def validate_for_startup(settings: Settings) -> list[str]:
    """Refuse unsafe combinations by name; returns warnings that do not stop start-up."""
    warnings: list[str] = []
    env = settings.env
    key = settings.service_key.get_secret_value() if settings.service_key else None
    if env != "development":
        if not key:
            raise ConfigError("WEDSYNC_SERVICE_KEY", f"is required in {env}")
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(
                "WEDSYNC_SERVICE_KEY", f"must be at least {MIN_KEY_LENGTH} characters in {env}"
            )
        if env == "production" and key.strip().lower() in KNOWN_DEFAULT_KEYS:
            raise ConfigError(
                "WEDSYNC_SERVICE_KEY", "is a known default value; generate a random key"
            )
    for field in ("database_url", "direct_database_url", "user_database_url"):
        value: SecretStr | None = getattr(settings, field)
        if value is None:
            continue
        dsn = value.get_secret_value()
        if not (dsn.startswith(("postgresql://", "postgres://")) or "=" in dsn):
            raise ConfigError(
                _env_name(field), "is not a PostgreSQL URL (postgresql://user@host/db)"
            )
        try:
            sslmode = dsn_params(dsn).get("sslmode", "prefer")
        except ValueError:
            raise ConfigError(_env_name(field), "is not a valid connection string") from None
        if settings.profile.tls_required and not dsn_host_is_local(dsn):
            allowed = ("verify-full", "verify-ca", "require")
            if sslmode not in allowed:
                if env == "production":
                    raise ConfigError(
                        _env_name(field),
                        f"leaves this machine without TLS (sslmode={sslmode}); "
                        "add sslmode=verify-full or sslmode=require",
                    )
                warnings.append(
                    f"{_env_name(field)} leaves this machine without TLS (sslmode={sslmode})"
                )
    if env == "production" and settings.database_url is None:
        raise ConfigError("DATABASE_URL", "is required in production (no embedded server)")
    if settings.pooler == "transaction" and settings.direct_database_url is None:
        warnings.append(
            "WEDSYNC_POOLER=transaction without DIRECT_DATABASE_URL: migrations will use "
            "DATABASE_URL, which must then reach PostgreSQL directly for advisory locks"
        )
    return warnings


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; raises ConfigError naming the bad variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = str(err["loc"][0]) if err["loc"] else "settings"
        raise ConfigError(_env_name(loc), str(err["msg"])) from None
    validate_for_startup(settings)
    if settings.service_key is None and settings.env == "development":
        settings.service_key = SecretStr(_development_service_key(settings.data_dir))
    return settings


def _development_service_key(data_dir: Path) -> str:
    """A random key kept in the data directory so that restarts reuse it (development only)."""
    path = data_dir / "service_key"
    try:
        if path.exists():
            return path.read_text().strip()
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        # created 0600 from the start: never readable by others, not even for a moment
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key
    except OSError:
        return secrets.token_urlsafe(32)
