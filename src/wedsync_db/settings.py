"""Settings: environment profiles, validation at start-up, redaction of secrets.

Everything comes from ``WEDSYNC_*`` variables (plus ``DATABASE_URL`` / ``DIRECT_DATABASE_URL``)
and an optional ``.env``. Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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

# change feed retention per environment (hours)
FEED_RETENTION_HOURS: dict[str, float] = {
    "development": 24.0,
    "staging": 72.0,
    "production": 168.0,
}


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


_WINDOW_EXAMPLE = "use START/END LABEL, e.g. 2026-12-24/2026-12-27 christmas"


@dataclass(frozen=True)
class FreezeWindow:
    """A configured period [start, end) during which every migration is frozen."""

    start: datetime
    end: datetime
    label: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"freeze window {self.label!r} needs timezone-aware bounds")
        if self.end <= self.start:
            raise ValueError(f"freeze window {self.label!r} ends before it starts")

    def contains(self, now: datetime) -> bool:
        """True when ``now`` falls inside the window."""
        return self.start <= now < self.end

    def text(self) -> str:
        """The window as WEDSYNC_FREEZE_WINDOWS writes it (whole days as dates)."""
        midnight = time()
        if self.start.time() == midnight == self.end.time():
            last = (self.end - timedelta(days=1)).date()
            return f"{self.start.date().isoformat()}/{last.isoformat()} {self.label}"
        return f"{self.start.isoformat()}/{self.end.isoformat()} {self.label}"


def parse_freeze_windows(value: str, tz: ZoneInfo) -> tuple[FreezeWindow, ...]:
    """Parse ``WEDSYNC_FREEZE_WINDOWS`` (``START/END LABEL, ...``) in platform time."""
    windows: list[FreezeWindow] = []
    for item in (p.strip() for p in value.split(",")):
        if not item:
            continue
        parts = item.split(None, 1)
        if len(parts) != 2 or "/" not in parts[0]:
            raise ValueError(f"bad freeze window {item!r} ({_WINDOW_EXAMPLE})")
        span, label = parts[0], parts[1].strip()
        start_text, end_text = span.split("/", 1)
        try:
            start = _parse_bound(start_text, tz, is_end=False)
            end = _parse_bound(end_text, tz, is_end=True)
            windows.append(FreezeWindow(start=start, end=end, label=label))
        except ValueError as exc:
            raise ValueError(f"bad freeze window {item!r}: {exc} ({_WINDOW_EXAMPLE})") from None
    return tuple(windows)


def _parse_bound(text: str, tz: ZoneInfo, *, is_end: bool) -> datetime:
    """An ISO date or datetime; naive values are platform time, a date-only end is inclusive."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO date or datetime") from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
    if is_end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=tz)


# --- parsed values written back as a user writes them (config show) ------------------------
def _runs(values: Iterable[int], cycle: range, name: Callable[[int], str]) -> str:
    """``mon-thu``, ``fri,sat``, ``11-2``: runs of three or more as a range, read round the
    cycle (a week, a year) so that a run may wrap."""
    chosen = set(values)
    order = list(cycle)
    if chosen and len(chosen) < len(order):
        # start right after a gap, so that a run over the end of the cycle stays whole
        first = next(i for i, v in enumerate(order) if v in chosen and order[i - 1] not in chosen)
        order = order[first:] + order[:first]
    parts: list[str] = []
    run: list[int] = []
    for v in [*order, None]:
        if v is not None and v in chosen:
            run.append(v)
            continue
        if len(run) >= 3:
            parts.append(f"{name(run[0])}-{name(run[-1])}")
        else:
            parts.extend(name(x) for x in run)
        run = []
    return ",".join(parts)


def format_weekdays(days: Iterable[int]) -> str:
    """ISO weekday numbers (Mon=0) as ``mon-thu`` / ``sat``."""
    return _runs(days, range(7), lambda d: WEEKDAYS[d])


def format_months(months: Iterable[int]) -> str:
    """Month numbers as ``5-10`` / ``6,8``."""
    return _runs(months, range(1, 13), str)


def format_time_window(window: tuple[time, time]) -> str:
    """``01:00-05:00``."""
    return "-".join(t.isoformat(timespec="minutes" if not t.second else "seconds") for t in window)


def _parsed_from_text(parse: Callable[[str], object]) -> BeforeValidator:
    """Parse a setting written as text (environment, .env); parsed values pass through."""
    return BeforeValidator(lambda value: parse(value) if isinstance(value, str) else value)


def _split_paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p.strip()) for p in value.split(os.pathsep) if p.strip())


# NoDecode: pydantic-settings hands the raw text to the validator instead of reading JSON
Weekdays = Annotated[
    frozenset[int],
    NoDecode,
    _parsed_from_text(parse_weekdays),
    PlainSerializer(format_weekdays, return_type=str),
]
Months = Annotated[
    frozenset[int],
    NoDecode,
    _parsed_from_text(parse_months),
    PlainSerializer(format_months, return_type=str),
]
TimeWindow = Annotated[
    tuple[time, time],
    NoDecode,
    _parsed_from_text(parse_time_window),
    PlainSerializer(format_time_window, return_type=str),
]
FreezeWindows = Annotated[
    tuple[FreezeWindow, ...],
    NoDecode,
    PlainSerializer(lambda ws: ", ".join(w.text() for w in ws), return_type=str),
]
PathList = Annotated[
    tuple[Path, ...],
    NoDecode,
    _parsed_from_text(_split_paths),
    PlainSerializer(lambda ps: os.pathsep.join(str(p) for p in ps), return_type=str),
]


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
    # import files uploaded to POST …/imports (413 beyond); spooled to disk, never held whole
    import_max_bytes: int = Field(default=52_428_800, gt=0, le=4_294_967_296)
    history_retention_days: int | None = Field(default=None, ge=1)
    backup_retention_days: int | None = Field(default=None, ge=1)
    # the change feed: how long changes are kept (None: the profile's, see
    # effective_feed_retention_hours), how often readers poll without a NOTIFY, and how often
    # an idle SSE stream sends a heartbeat comment
    feed_retention_hours: float | None = Field(default=None, gt=0)
    feed_poll_interval: float = Field(default=1.0, gt=0, le=60)
    feed_heartbeat_interval: float = Field(default=15.0, gt=0)
    # the backup repository (WAL archive, base backups, metadata); default <data dir>/backups
    backup_dir: Path | None = None
    # where the server's pg_basebackup & co. are, when they are not found by themselves
    pg_bin_dir: Path | None = None
    # `up` takes a backup / verifies the newest one this often (0: never); None: the profile's
    backup_every_hours: float | None = Field(default=None, ge=0)
    backup_verify_every_hours: float | None = Field(default=None, ge=0)
    disk_budget_gb: float = Field(default=50.0, gt=0)

    # parsed once here: "sat", "mon-thu", "5-10", "01:00-05:00" become the values below
    freeze_mode: FreezeMode | None = None
    freeze_weekdays: Weekdays = frozenset({5})
    peak_months: Months = frozenset(range(5, 11))
    maintenance_window: TimeWindow = (time(1, 0), time(5, 0))
    maintenance_weekdays: Weekdays = frozenset({0, 1, 2, 3})
    # extra freeze windows, e.g. "2026-12-24/2026-12-27 christmas, 2027-06-01/2027-06-02 launch"
    # in platform time (WEDSYNC_TIMEZONE)
    freeze_windows: FreezeWindows = ()
    # team migration directories, applied after the built-in files; separated like PATH
    # (os.pathsep: ":" on POSIX); `migrate … --dir` replaces them for one command
    migration_dirs: PathList = ()
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

    @field_validator("freeze_windows", mode="before")
    @classmethod
    def _windows(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        # an unknown timezone is reported on its own variable; the windows are still checked
        zone = ZoneInfo(info.data["timezone"]) if "timezone" in info.data else ZoneInfo("UTC")
        return parse_freeze_windows(value, zone)

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
    def effective_feed_retention_hours(self) -> float:
        """How long the change feed keeps changes: a day in development, three in staging, a
        week in production (a client offline longer reloads the current state)."""
        if self.feed_retention_hours is not None:
            return self.feed_retention_hours
        return FEED_RETENTION_HOURS[self.env]

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

    # identity (wedsync_db.identity): RS256/ES256 keys as a JWKS file, http(s) URL or inline
    # JSON; the clock leeway for exp/nbf/iat; where a token carries the vendor/couple audience
    jwks: str | None = None
    jwt_leeway: float = Field(default=30.0, ge=0, le=600)
    jwt_audience_claim: str = "app_metadata.audience"

    # the data API (/api/v1): requests per second and burst, per user and per organization
    # (a vendor user's requests also count against each of its organizations); 0 = no limit
    api_user_rate: float = Field(default=50.0, ge=0)
    api_user_burst: int = Field(default=100, ge=1)
    api_organization_rate: float = Field(default=200.0, ge=0)
    api_organization_burst: int = Field(default=400, ge=1)


# --- connection strings -------------------------------------------------------------------
_SECRET_KEYS = ("password", "sslpassword")
MASK = "****"


def redact_dsn(dsn: str) -> str:
    """Replace the password of a postgres URL or key/value DSN with ``****``."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":" + MASK
            netloc = f"{userinfo}@{host}"
        query = "&".join(
            f"{k}={MASK if k.lower() in _SECRET_KEYS else v}"
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    try:
        params = dsn_params(dsn)
    except ValueError:
        # unparseable: show nothing that could be a secret
        return "<unparseable connection string>"
    return make_conninfo("", **{k: MASK if k in _SECRET_KEYS else v for k, v in params.items()})


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
    """The parameters of a URL or key/value DSN as libpq reads them (no defaults from the
    environment); ValueError when libpq cannot parse it."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise ValueError("not a valid connection string") from None
    return {k: str(v) for k, v in params.items() if v is not None}


# --- start-up validation --------------------------------------------------------------------
def variable_name(field: str) -> str:
    """The environment variable of a settings field."""
    if field == "database_url":
        return "DATABASE_URL"
    if field == "direct_database_url":
        return "DIRECT_DATABASE_URL"
    return f"WEDSYNC_{field.upper()}"


def startup_problems(settings: Settings) -> tuple[list[ConfigError], list[str]]:
    """Every unsafe combination, by name (errors), and what does not stop start-up (warnings)."""
    errors: list[ConfigError] = []
    warnings: list[str] = []
    env = settings.env
    key = settings.service_key.get_secret_value() if settings.service_key else None
    if env != "development":
        if not key:
            errors.append(ConfigError("WEDSYNC_SERVICE_KEY", f"is required in {env}"))
        elif len(key) < MIN_KEY_LENGTH:
            errors.append(
                ConfigError(
                    "WEDSYNC_SERVICE_KEY", f"must be at least {MIN_KEY_LENGTH} characters in {env}"
                )
            )
        elif env == "production" and key.strip().lower() in KNOWN_DEFAULT_KEYS:
            errors.append(
                ConfigError(
                    "WEDSYNC_SERVICE_KEY", "is a known default value; generate a random key"
                )
            )
    for field in ("database_url", "direct_database_url", "user_database_url"):
        value: SecretStr | None = getattr(settings, field)
        if value is None:
            continue
        dsn = value.get_secret_value()
        name = variable_name(field)
        if not (dsn.startswith(("postgresql://", "postgres://")) or "=" in dsn):
            errors.append(ConfigError(name, "is not a PostgreSQL URL (postgresql://user@host/db)"))
            continue
        try:
            sslmode = dsn_params(dsn).get("sslmode", "prefer")
        except ValueError:
            errors.append(ConfigError(name, "is not a valid connection string"))
            continue
        if settings.profile.tls_required and not dsn_host_is_local(dsn):
            allowed = ("verify-full", "verify-ca", "require")
            if sslmode not in allowed:
                if env == "production":
                    errors.append(
                        ConfigError(
                            name,
                            f"leaves this machine without TLS (sslmode={sslmode}); "
                            "add sslmode=verify-full or sslmode=require",
                        )
                    )
                else:
                    warnings.append(f"{name} leaves this machine without TLS (sslmode={sslmode})")
    if env == "production" and settings.database_url is None:
        errors.append(ConfigError("DATABASE_URL", "is required in production (no embedded server)"))
    if settings.pooler == "transaction" and settings.direct_database_url is None:
        warnings.append(
            "WEDSYNC_POOLER=transaction without DIRECT_DATABASE_URL: migrations will use "
            "DATABASE_URL, which must then reach PostgreSQL directly for advisory locks"
        )
    return errors, warnings


def validate_for_startup(settings: Settings) -> list[str]:
    """Refuse the first unsafe combination by name; returns warnings that do not stop
    start-up."""
    errors, warnings = startup_problems(settings)
    if errors:
        raise errors[0]
    return warnings


# --- what config show / config check report ------------------------------------------------
# settings that take the environment profile's value while unset, and the property giving it
_PROFILE_VALUES = {
    "connection_budget": "effective_connection_budget",
    "freeze_mode": "effective_freeze_mode",
    "history_retention_days": "effective_history_retention_days",
    "backup_retention_days": "effective_backup_retention_days",
    "feed_retention_hours": "effective_feed_retention_hours",
    "backup_every_hours": "effective_backup_every_hours",
    "backup_verify_every_hours": "effective_backup_verify_every_hours",
}
# WEDSYNC_* names read by the test suite and the benchmarks, not by the settings
TOOLING_VARIABLES = frozenset(
    {"WEDSYNC_TEST_DATABASE_URL", "WEDSYNC_BENCH_DSN", "WEDSYNC_UPDATE_SNAPSHOT"}
)
ENV_FILE = Path(".env")
PREFIX = "WEDSYNC_"


@dataclass(frozen=True)
class ShownSetting:
    """One variable as `config show` prints it: the text a user would write (secrets
    masked; None when unset) and where the value came from."""

    variable: str
    value: str | None
    source: str


def variable_names(field: str) -> tuple[str, ...]:
    """Every environment variable that sets a field, the documented one first."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (variable_name(field),)


def known_variables() -> frozenset[str]:
    """Every variable name the settings read."""
    return frozenset(n for field in Settings.model_fields for n in variable_names(field))


def _written_variables(env_file: Path | None) -> tuple[dict[str, str], dict[str, str]]:
    """(environment, .env file) variables by upper-case name, as the settings read them."""
    environ = {k.upper(): v for k, v in os.environ.items()}
    dotenv: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        dotenv = {k.upper(): v or "" for k, v in dotenv_values(env_file).items()}
    return environ, dotenv


def show_settings(settings: Settings, *, env_file: Path | None = ENV_FILE) -> list[ShownSetting]:
    """Every setting by variable name, with its effective value and its source."""
    environ, dotenv = _written_variables(env_file)
    dumped = settings.model_dump(mode="json")
    shown: list[ShownSetting] = []
    for field in Settings.model_fields:
        names = variable_names(field)
        variable, source = names[0], "default"
        for where, written in (("environment", environ), (".env file", dotenv)):
            found = next((n for n in names if n in written), None)
            if found is not None:
                variable, source = found, where
                break
        value: object = getattr(settings, field)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            text: str | None = redact_dsn(secret) if field.endswith("url") else "********"
            if field in ("service_key", "jwt_secret") and source == "default":
                source = f"generated ({settings.data_dir / field})"
        elif value is None and field in _PROFILE_VALUES:
            text = _as_text(getattr(settings, _PROFILE_VALUES[field]))
            source = f"default ({settings.env} profile)" if source == "default" else source
        elif field == "jwks" and isinstance(value, str) and "://" in value:
            # a key set URL may carry credentials or a token in its query
            text = redact_dsn(value.split("?", 1)[0]) + ("?****" if "?" in value else "")
        elif value is None and field == "backup_dir":
            text = str(settings.effective_backup_dir)
        else:
            text = None if value is None else _as_text(dumped[field])
        shown.append(ShownSetting(variable, text, source))
    return shown


def _as_text(value: object) -> str:
    """A value as it is written in the environment: 60 not 60.0, true not True."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def misspelt_variables(names: Iterable[str]) -> list[str]:
    """A warning for each WEDSYNC_* name that no setting reads, naming the closest one."""
    known = known_variables()
    suffixes = sorted(n.removeprefix(PREFIX) for n in known if n.startswith(PREFIX))
    warnings: list[str] = []
    for name in sorted({n.upper() for n in names}):
        if not name.startswith(PREFIX) or name in known or name in TOOLING_VARIABLES:
            continue
        # compared without the shared prefix, which would make every name look close
        close = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.6)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else ""
        warnings.append(f"{name} is not a setting and is ignored{hint}")
    return warnings


@dataclass(frozen=True)
class SettingsCheck:
    """What `config check` found: every bad variable, every warning, and the settings with
    each bad value replaced by its default (for the checks that read them further)."""

    errors: list[ConfigError]
    warnings: list[str]
    settings: Settings


def check_settings(*, env_file: Path | None = ENV_FILE, **overrides: Any) -> SettingsCheck:
    """Every bad variable at once (not only the first) and every warning, for `config check`;
    nothing is written (no development key)."""
    errors: list[ConfigError] = []
    try:
        settings = Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        defaults: dict[str, Any] = {}
        for field, error in _validation_errors(exc):
            errors.append(error)
            if field:
                defaults[field] = Settings.model_fields[field].default
        # the remaining checks run with the bad values replaced by their defaults
        settings = Settings(_env_file=env_file, **{**overrides, **defaults})
    startup_errors, warnings = startup_problems(settings)
    environ, dotenv = _written_variables(env_file)
    return SettingsCheck(
        errors + startup_errors, warnings + misspelt_variables([*environ, *dotenv]), settings
    )


def _validation_errors(exc: ValidationError) -> list[tuple[str | None, ConfigError]]:
    """(field, error naming its variable) for each problem pydantic found."""
    found: list[tuple[str | None, ConfigError]] = []
    for err in exc.errors():
        loc = str(err["loc"][0]) if err["loc"] else ""
        # a field name, or one of its variables (DATABASE_URL)
        field = loc if loc in Settings.model_fields else None
        field = field or next((f for f in Settings.model_fields if loc in variable_names(f)), None)
        name = variable_name(field) if field else loc or "settings"
        # without pydantic's "Value error," prefix
        found.append((field, ConfigError(name, err["msg"].removeprefix("Value error, "))))
    return found


def load_settings(*, generate_key: bool = True, **overrides: Any) -> Settings:
    """Read and validate settings; raises ConfigError naming the bad variable. In development
    a missing service key is generated (and kept in the data directory) unless
    ``generate_key`` is false (commands that never serve)."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise _validation_errors(exc)[0][1] from None
    validate_for_startup(settings)
    if generate_key and settings.env == "development":
        if settings.service_key is None:
            settings.service_key = SecretStr(_development_secret(settings.data_dir, "service_key"))
        if settings.jwt_secret is None and not (settings.jwks or "").strip():
            # `wedsync-db token` and the server read the same file: development tokens verify
            settings.jwt_secret = SecretStr(_development_secret(settings.data_dir, "jwt_secret"))
    return settings


def _development_secret(data_dir: Path, name: str) -> str:
    """A random secret kept in the data directory so that restarts reuse it (development only)."""
    path = data_dir / name
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
