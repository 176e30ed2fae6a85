"""Settings: environment profiles, start-up validation naming the variable, secret redaction."""

from __future__ import annotations

import json
import stat
from dataclasses import asdict
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.environment import isolate_settings
from wedsync_db.errors import ConfigError
from wedsync_db.settings import (
    KNOWN_DEFAULT_KEYS,
    Settings,
    check_settings,
    dsn_host_is_local,
    dsn_params,
    format_months,
    format_time_window,
    format_weekdays,
    load_settings,
    misspelt_variables,
    parse_months,
    parse_time_window,
    parse_weekdays,
    redact_dsn,
    show_settings,
    validate_for_startup,
)

GOOD_KEY = "k" * 24 + "Zq9!x7Lp"  # 32 characters
REMOTE = "postgresql://app:pw@db.example.com:5432/wedsync"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No real environment or .env file leaks into these tests."""
    isolate_settings(monkeypatch, tmp_path)
    return tmp_path


def set_environment(mp: pytest.MonkeyPatch, **values: str) -> None:
    """Set WEDSYNC_<NAME> for each keyword."""
    for name, value in values.items():
        mp.setenv(f"WEDSYNC_{name}", value)


def refused(variable: str) -> Any:
    """pytest.raises for a ConfigError that names ``variable``."""
    return pytest.raises(ConfigError, match=f"^{variable}:")


# --- profiles -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "budget", "backup", "freeze", "pools"),
    [
        ("development", 10, 1, "off", (8, 2)),
        ("staging", 20, 3, "warn", (16, 4)),
        ("production", 100, 7, "enforce", (80, 20)),
    ],
)
def test_profiles_give_defaults(
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    budget: int,
    backup: int,
    freeze: str,
    pools: tuple[int, int],
) -> None:
    monkeypatch.setenv("WEDSYNC_ENV", env)
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", GOOD_KEY)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1/wedsync")
    s = load_settings()
    assert s.env == env
    assert s.effective_connection_budget == budget
    assert s.effective_backup_retention_days == backup
    assert s.effective_freeze_mode == freeze
    assert s.pool_sizes == pools
    assert sum(s.pool_sizes) == budget


def test_history_retention_grows_with_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", GOOD_KEY)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1/wedsync")
    days = []
    for env in ("development", "staging", "production"):
        monkeypatch.setenv("WEDSYNC_ENV", env)
        days.append(load_settings().effective_history_retention_days)
    assert days == sorted(days) and days[0] < days[-1]


def test_any_profile_value_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_ENV", "production")
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", GOOD_KEY)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1/wedsync")
    monkeypatch.setenv("WEDSYNC_CONNECTION_BUDGET", "40")
    monkeypatch.setenv("WEDSYNC_FREEZE_MODE", "warn")
    monkeypatch.setenv("WEDSYNC_BACKUP_RETENTION_DAYS", "14")
    s = load_settings()
    assert s.effective_connection_budget == 40
    assert s.pool_sizes == (32, 8)
    assert s.effective_freeze_mode == "warn"
    assert s.effective_backup_retention_days == 14


def test_an_env_file_in_the_working_directory_is_read(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    (clean_environment / ".env").write_text("WEDSYNC_TIMEZONE=America/New_York\n")
    assert load_settings().timezone == "America/New_York"


# --- production and staging refuse unsafe values, by name --------------------------------------
def production(
    monkeypatch: pytest.MonkeyPatch, *, key: str | None = GOOD_KEY, url: str | None
) -> None:
    monkeypatch.setenv("WEDSYNC_ENV", "production")
    if key is not None:
        monkeypatch.setenv("WEDSYNC_SERVICE_KEY", key)
    if url is not None:
        monkeypatch.setenv("DATABASE_URL", url)


@pytest.mark.parametrize("key", [None, "", "short-key", "x" * 31])
def test_production_refuses_a_missing_or_short_service_key(
    monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    production(monkeypatch, key=key, url="postgresql://app@127.0.0.1/wedsync")
    with refused("WEDSYNC_SERVICE_KEY"):
        load_settings()


def test_production_refuses_a_known_default_key(monkeypatch: pytest.MonkeyPatch) -> None:
    default = next(k for k in KNOWN_DEFAULT_KEYS if len(k) >= 32)
    production(monkeypatch, key=f"  {default.upper()} ", url="postgresql://app@127.0.0.1/wedsync")
    with refused("WEDSYNC_SERVICE_KEY") as info:
        load_settings()
    assert "default" in str(info.value)
    assert default not in str(info.value).lower()


# production's TLS rule: (DATABASE_URL, accepted); a remote host needs sslmode=require or
# stronger, a local connection (loopback or a socket) needs none
PRODUCTION_URLS = [
    (REMOTE, False),
    (REMOTE + "?sslmode=prefer", False),
    (REMOTE + "?sslmode=disable", False),
    ("host=db.example.com dbname=wedsync user=app password=pw", False),
    ("postgresql://app:pw@10.0.0.5/wedsync", False),
    ("postgresql://app:pw@127.0.0.1,db.example.com/wedsync", False),
    (REMOTE + "?sslmode=require", True),
    (REMOTE + "?sslmode=verify-full", True),
    ("host=db.example.com dbname=wedsync sslmode=verify-full", True),
    ("postgresql://app:pw@127.0.0.1:5432/wedsync", True),
    ("postgresql://app:pw@localhost/wedsync", True),
    ("postgresql://app:pw@[::1]/wedsync", True),
    ("postgresql:///wedsync?host=/var/run/postgresql", True),
    ("host=/var/run/postgresql dbname=wedsync", True),
]


@pytest.mark.parametrize(("url", "accepted"), PRODUCTION_URLS)
def test_production_wants_tls_to_a_remote_database(
    monkeypatch: pytest.MonkeyPatch, url: str, accepted: bool
) -> None:
    production(monkeypatch, url=url)
    if accepted:
        assert load_settings().database_url is not None
        return
    with refused("DATABASE_URL") as info:
        load_settings()
    assert "sslmode" in str(info.value)
    assert ":pw@" not in str(info.value) and "password=pw" not in str(info.value)


def test_production_refuses_a_spaced_key_value_remote_host(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch, url="host = db.example.com dbname=wedsync user=app")
    with refused("DATABASE_URL"):
        load_settings()


def test_production_checks_the_direct_url_too(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch, url=REMOTE + "?sslmode=verify-full")
    monkeypatch.setenv("DIRECT_DATABASE_URL", "postgresql://app@direct.example.com/wedsync")
    with refused("DIRECT_DATABASE_URL"):
        load_settings()


def test_production_needs_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    production(monkeypatch, url=None)
    with refused("DATABASE_URL"):
        load_settings()


def test_staging_requires_a_long_key_and_only_warns_about_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEDSYNC_ENV", "staging")
    monkeypatch.setenv("DATABASE_URL", REMOTE)
    with refused("WEDSYNC_SERVICE_KEY"):
        load_settings()
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", "y" * 31)
    with refused("WEDSYNC_SERVICE_KEY"):
        load_settings()
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", "y" * 32)
    s = load_settings()
    warnings = validate_for_startup(s)
    assert any(w.startswith("DATABASE_URL") and "TLS" in w for w in warnings)
    assert not any("pw" in w for w in warnings)


def test_development_accepts_anything_reasonable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", REMOTE)
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", "dev")
    s = load_settings()
    assert validate_for_startup(s) == []


def test_a_database_url_that_is_not_postgres_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://app@127.0.0.1/wedsync")
    with refused("DATABASE_URL"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEDSYNC_ENV", "prod"),
        ("WEDSYNC_TIMEZONE", "Europe/Atlantis"),
        ("WEDSYNC_TIMEZONE", "../../etc/passwd"),
        ("WEDSYNC_PEAK_MONTHS", "13"),
        ("WEDSYNC_PEAK_MONTHS", "may-oct"),
        ("WEDSYNC_FREEZE_WEEKDAYS", "funday"),
        ("WEDSYNC_FREEZE_WEEKDAYS", "sat-someday"),
        ("WEDSYNC_MAINTENANCE_WINDOW", "1am-5am"),
        ("WEDSYNC_CONNECTION_BUDGET", "1"),
        ("WEDSYNC_POOLER", "session"),
        ("WEDSYNC_FREEZE_WINDOWS", "garbage"),
        ("WEDSYNC_FREEZE_WINDOWS", "2026-12-27/2026-12-24 backwards"),
        ("WEDSYNC_MAINTENANCE_WEEKDAYS", "weekdays"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with refused(variable):
        load_settings()


# --- parsing helpers --------------------------------------------------------------------------
def test_weekdays_and_months_parse() -> None:
    assert parse_weekdays("sat") == {5}
    assert parse_weekdays("mon-thu") == {0, 1, 2, 3}
    assert parse_weekdays("fri-mon") == {4, 5, 6, 0}
    assert parse_weekdays("Friday, Saturday") == {4, 5}
    assert parse_months("5-10") == set(range(5, 11))
    assert parse_months("11-2") == {11, 12, 1, 2}
    assert parse_months("") == set()


# as a user writes them in the environment, and as config show writes them back
CALENDAR_TEXT = {
    "FREEZE_WEEKDAYS": "fri,sat",
    "PEAK_MONTHS": "11-2",
    "MAINTENANCE_WINDOW": "22:00-02:30",
    "MAINTENANCE_WEEKDAYS": "sun-wed",
    "FREEZE_WINDOWS": "2026-11-26/2026-11-27 thanksgiving",
}


def test_settings_hold_parsed_calendar_values(monkeypatch: pytest.MonkeyPatch) -> None:
    set_environment(monkeypatch, TIMEZONE="America/New_York", **CALENDAR_TEXT)
    s = load_settings()
    assert s.freeze_weekdays == {4, 5}
    assert s.peak_months == {11, 12, 1, 2}
    assert s.maintenance_window == (time(22, 0), time(2, 30))
    assert s.maintenance_weekdays == {6, 0, 1, 2}
    (window,) = s.freeze_windows
    assert window.label == "thanksgiving"
    new_york = ZoneInfo("America/New_York")
    assert (window.start, window.end) == (
        datetime(2026, 11, 26, tzinfo=new_york),
        datetime(2026, 11, 28, tzinfo=new_york),
    )
    shown = s.model_dump(mode="json")
    assert {name: shown[name.lower()] for name in CALENDAR_TEXT} == CALENDAR_TEXT


def test_defaults_are_parsed_values_too() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.freeze_weekdays == {5} and s.peak_months == set(range(5, 11))
    assert s.maintenance_window == (time(1), time(5)) and s.freeze_windows == ()
    assert s.model_dump(mode="json")["maintenance_weekdays"] == "mon-thu"


@given(st.frozensets(st.integers(0, 6)))
def test_weekdays_written_back_parse_to_the_same_days(days: frozenset[int]) -> None:
    assert parse_weekdays(format_weekdays(days)) == days


@given(st.frozensets(st.integers(1, 12)))
def test_months_written_back_parse_to_the_same_months(months: frozenset[int]) -> None:
    assert parse_months(format_months(months)) == months


def test_time_window_written_back() -> None:
    assert format_time_window(parse_time_window(" 01:00 - 05:00")) == "01:00-05:00"
    assert format_time_window(parse_time_window("23:15:30-02:00")) == "23:15:30-02:00"


@pytest.mark.parametrize(
    ("dsn", "local"),
    [
        ("postgresql://u@127.0.0.1/db", True),
        ("postgresql://u@127.8.9.1/db", True),
        ("postgresql://u@localhost/db", True),
        ("postgresql:///db", True),
        ("host=/tmp dbname=db", True),
        ("postgresql://u@db.example.com/db", False),
        ("postgresql://u@192.168.1.10/db", False),
        ("host=10.1.1.1 dbname=db", False),
    ],
)
def test_local_hosts(dsn: str, local: bool) -> None:
    assert dsn_host_is_local(dsn) is local


# --- secrets never shown ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:s3cret@db.example.com:5432/wedsync?sslmode=require",
        "postgres://app:s3cret@db.example.com/wedsync",
        "postgresql://app:s3cr%40et@db.example.com/wedsync",
        "postgresql://app@db.example.com/wedsync?password=s3cret&sslmode=require",
        "postgresql://app@db.example.com/wedsync?sslpassword=s3cret",
        "host=db.example.com user=app password=s3cret dbname=wedsync",
        "host=db.example.com user=app password='s3cret' dbname=wedsync",
    ],
)
def test_redact_dsn_hides_the_password(dsn: str) -> None:
    shown = redact_dsn(dsn)
    assert "s3cr" not in shown
    assert "db.example.com" in shown
    assert "app" in shown


@pytest.mark.parametrize(
    "dsn",
    [
        "host=db.example.com password='my s3cret' dbname=wedsync",
        "host=db.example.com password = s3cret dbname=wedsync",
    ],
)
def test_redact_dsn_hides_quoted_or_spaced_passwords(dsn: str) -> None:
    assert "s3cret" not in redact_dsn(dsn)


def test_redacted_settings_hide_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:dbpass-111@127.0.0.1/wedsync")
    monkeypatch.setenv("DIRECT_DATABASE_URL", "host=127.0.0.1 user=app password=dbpass-222")
    monkeypatch.setenv(
        "WEDSYNC_USER_DATABASE_URL", "postgresql://auth:dbpass-333@127.0.0.1/wedsync"
    )
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", "servicekey-444" * 3)
    monkeypatch.setenv("WEDSYNC_JWT_SECRET", "jwtsecret-555")
    monkeypatch.setenv("WEDSYNC_AUTHENTICATOR_PASSWORD", "authpass-666")
    monkeypatch.setenv("WEDSYNC_METRICS_TOKEN", "metrics-777")
    s = load_settings()
    shown = json.dumps([asdict(v) for v in show_settings(s)])
    for secret in (
        "dbpass-111",
        "dbpass-222",
        "dbpass-333",
        "servicekey-444",
        "jwtsecret-555",
        "authpass-666",
        "metrics-777",
    ):
        assert secret not in shown
        assert secret not in repr(s)
    by_name = {v.variable: v for v in show_settings(s)}
    assert by_name["DATABASE_URL"].value == "postgresql://app:****@127.0.0.1/wedsync"
    assert by_name["WEDSYNC_SERVICE_KEY"].value == "********"


# --- config show: variable names, values as written, where each came from ---------------------
def test_shown_settings_name_variables_and_sources(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    set_environment(
        monkeypatch,
        ENV="staging",
        SERVICE_KEY=GOOD_KEY,
        DATABASE_URL="postgresql://app@127.0.0.1/wedsync",
        POOL_TIMEOUT="7.5",
    )
    (clean_environment / ".env").write_text("WEDSYNC_PEAK_MONTHS=6-8\nWEDSYNC_HTTP_PORT=9000\n")
    shown = {v.variable: v for v in show_settings(load_settings())}
    assert set(shown) >= {"WEDSYNC_ENV", "DIRECT_DATABASE_URL", "WEDSYNC_FREEZE_WINDOWS"}
    assert not any(name.islower() for name in shown)  # no Python field names
    assert (shown["WEDSYNC_ENV"].value, shown["WEDSYNC_ENV"].source) == ("staging", "environment")
    # the alias actually set is the one shown
    assert shown["WEDSYNC_DATABASE_URL"].source == "environment"
    assert shown["WEDSYNC_POOL_TIMEOUT"].value == "7.5"
    assert (shown["WEDSYNC_PEAK_MONTHS"].value, shown["WEDSYNC_PEAK_MONTHS"].source) == (
        "6-8",
        ".env file",
    )
    assert shown["WEDSYNC_HTTP_PORT"].value == "9000"
    assert (shown["WEDSYNC_QUERY_TIMEOUT"].value, shown["WEDSYNC_QUERY_TIMEOUT"].source) == (
        "60",
        "default",
    )
    assert shown["WEDSYNC_CONNECTION_BUDGET"].value == "20"
    assert shown["WEDSYNC_CONNECTION_BUDGET"].source == "default (staging profile)"
    assert shown["WEDSYNC_FREEZE_MODE"].value == "warn"
    assert shown["WEDSYNC_MAINTENANCE_WINDOW"].value == "01:00-05:00"
    assert shown["DIRECT_DATABASE_URL"].value is None
    assert shown["WEDSYNC_FREEZE_WEEKDAYS"].value == "sat"


def test_a_generated_development_key_says_so(clean_environment: Path) -> None:
    shown = {v.variable: v for v in show_settings(load_settings())}
    key = shown["WEDSYNC_SERVICE_KEY"]
    assert key.value == "********"
    assert key.source == f"generated ({clean_environment / 'data' / 'service_key'})"


# --- config check: every bad variable at once, misspelt names -----------------------------------
def test_check_reports_every_bad_variable_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    set_environment(
        monkeypatch,
        ENV="production",
        SERVICE_KEY="too-short",
        FREEZE_WINDOWS="garbage",
        PEAK_MONTHS="13",
        HTTP_PORT="eighty",
    )
    found = check_settings()
    assert sorted(e.variable for e in found.errors) == [
        "DATABASE_URL",
        "WEDSYNC_FREEZE_WINDOWS",
        "WEDSYNC_HTTP_PORT",
        "WEDSYNC_PEAK_MONTHS",
        "WEDSYNC_SERVICE_KEY",
    ]
    assert not any("Value error" in str(e) or "too-short" in str(e) for e in found.errors)
    assert not (Path("data") / "service_key").exists()  # a check writes nothing


def test_check_passes_good_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEDSYNC_FREEZE_WINDOWS", "2026-12-24/2026-12-27 christmas")
    found = check_settings()
    assert found.errors == [] and found.warnings == []


def test_misspelt_variables_get_the_closest_name() -> None:
    warnings = misspelt_variables(
        [
            "WEDSYNC_FREEZE_WINDOW",
            "wedsync_timezon",
            "WEDSYNC_TIMEZONE",
            "WEDSYNC_TEST_DATABASE_URL",
            "WEDSYNC_ZZZ",
            "HOME",
        ]
    )
    assert warnings == [
        "WEDSYNC_FREEZE_WINDOW is not a setting and is ignored; did you mean "
        "WEDSYNC_FREEZE_WINDOWS?",
        "WEDSYNC_TIMEZON is not a setting and is ignored; did you mean WEDSYNC_TIMEZONE?",
        "WEDSYNC_ZZZ is not a setting and is ignored",
    ]


def test_check_warns_about_misspelt_names_in_the_env_file(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    (clean_environment / ".env").write_text("WEDSYNC_PEAK_MONTH=6-8\n")
    assert check_settings().warnings == [
        "WEDSYNC_PEAK_MONTH is not a setting and is ignored; did you mean WEDSYNC_PEAK_MONTHS?"
    ]


# --- development service key ------------------------------------------------------------------
def test_development_generates_a_private_service_key_and_reuses_it(clean_environment: Path) -> None:
    first = load_settings()
    key = first.resolved_service_key()
    assert len(key) >= 32
    key_file = clean_environment / "data" / "service_key"
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_settings().resolved_service_key() == key


def test_a_configured_development_key_is_used_and_nothing_is_written(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", GOOD_KEY)
    assert load_settings().resolved_service_key() == GOOD_KEY
    assert not (clean_environment / "data" / "service_key").exists()


def test_settings_object_has_no_key_until_configured() -> None:
    s = Settings(_env_file=None, env="staging")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="WEDSYNC_SERVICE_KEY"):
        s.resolved_service_key()


def test_an_empty_database_url_means_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("WEDSYNC_SERVICE_KEY", " ")
    settings = load_settings()
    assert settings.database_url is None and settings.uses_embedded
    assert settings.service_key is not None  # blank counts as unset: development generates one


def test_a_redacted_key_value_dsn_keeps_every_other_parameter() -> None:
    shown = redact_dsn("host = db.example.com port=6543 password='my s3cret' dbname=wedsync")
    assert dsn_params(shown) == {
        "host": "db.example.com",
        "port": "6543",
        "password": "****",
        "dbname": "wedsync",
    }
    assert redact_dsn("host=db.example.com password") == "<unparseable connection string>"


def test_config_show_masks_a_key_set_urls_credentials_and_query() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, jwks="https://keys:hunter2@auth.example.org/jwks.json?token=abc123"
    )
    shown = {s.variable: s.value for s in show_settings(settings, env_file=None)}
    assert "hunter2" not in str(shown["WEDSYNC_JWKS"])
    assert "abc123" not in str(shown["WEDSYNC_JWKS"])
    assert "auth.example.org/jwks.json" in str(shown["WEDSYNC_JWKS"])
