"""The dual client: a user pool whose scopes run under RLS, and a service pool for elevated work."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import math
import time
import weakref
from collections.abc import Mapping
from typing import Any, Literal
from uuid import UUID

import psycopg
import psycopg_pool
from psycopg import AsyncConnection, generators, pq, waiting
from psycopg.abc import PQGen
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wedsync_db.background import BackgroundTask
from wedsync_db.db.backoff import Backoff
from wedsync_db.db.errors import convert
from wedsync_db.db.heartbeat import HeartbeatSnapshot, HeartbeatState, OutageLog
from wedsync_db.db.pool import LifoConnectionPool
from wedsync_db.db.queries import statements
from wedsync_db.db.session import RESETTABLE_STATES, ScopedConnection, ScopeStart, Session
from wedsync_db.errors import DatabaseUnavailable, InvalidClaims, PoolExhausted, WedsyncDBError

log = logging.getLogger(__name__)

# psycopg_pool logs every failed connection attempt of an outage; each pool's OutageLog (by
# psycopg_pool name) takes them over: counted, and told once when the outage starts and ends
_OUTAGES: weakref.WeakValueDictionary[str, OutageLog] = weakref.WeakValueDictionary()
_POOL_FAILURES = ("error connecting in %r: %s",)


class _PoolFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _POOL_FAILURES or not isinstance(record.args, tuple):
            return True
        outage = _OUTAGES.get(str(record.args[0]))
        if outage is None:
            return True
        outage.failed(_hinted(str(record.args[1])))
        return False


def _hinted(reason: str) -> str:
    """A connection failure's reason, with the fix when it is a known one."""
    if f'role "{AUTHENTICATOR_ROLE}" does not exist' in reason:
        return reason + " (wedsync-db migrate apply creates it)"
    return reason


if not any(isinstance(f, _PoolFailures) for f in logging.getLogger("psycopg.pool").filters):
    logging.getLogger("psycopg.pool").addFilter(_PoolFailures())

AUTHENTICATOR_ROLE = "wedsync_authenticator"
Audience = Literal["vendor", "couple"]


class Claims(BaseModel):
    """The JWT claims a user scope runs with."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    sub: UUID
    aud: Audience = Field(validation_alias="aud")
    role: Literal["authenticated", "anon"] = "authenticated"
    email: str | None = None

    @classmethod
    def coerce(cls, claims: Claims | Mapping[str, Any]) -> Claims:
        """Validate a mapping of claims; the error names the bad claim."""
        if isinstance(claims, Claims):
            return claims
        data = dict(claims)
        if "aud" not in data and "audience" in data:
            data["aud"] = data.pop("audience")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = ".".join(str(p) for p in err["loc"]) or "claims"
            raise InvalidClaims(f"invalid claim {name!r}: {err['msg']}") from None

    def to_json(self) -> str:
        """The JSON stored in request.jwt.claims."""
        return json.dumps(self.model_dump(mode="json", exclude_none=True), separators=(",", ":"))


class Scope:
    """``async with`` one scope: a pooled connection whose next transaction starts with the
    scope's role and claims; committed on a clean exit, rolled back on an error, then returned
    to its pool. A class rather than a generator-based context manager: this is the hot path."""

    __slots__ = ("_claims", "_conn", "_db", "_pool_name", "_session", "_start")

    def __init__(
        self,
        db: Database,
        pool_name: str,
        start: ScopeStart | None = None,
        *,
        claims: Claims | Mapping[str, Any] | None = None,
    ) -> None:
        self._db = db
        self._pool_name = pool_name
        self._start = start
        self._claims = claims
        self._conn: AsyncConnection[Any] | None = None
        self._session: Session | None = None

    async def __aenter__(self) -> Session:
        db = self._db
        if self._claims is not None:
            start = await db._user_start(self._claims)
        else:
            assert self._start is not None
            start = self._start
            if not start.signature and db._key is not None:
                start = dataclasses.replace(start, signature=db._sign(start.claims))
        conn = await db._getconn(self._pool_name)
        self._conn = conn
        self._session = Session(
            conn,
            self._pool_name,
            start=start,
            fast_reads=self._claims is not None,
            reconnect=self._replace_connection,
        )
        return self._session

    async def _replace_connection(self) -> AsyncConnection[Any]:
        """Give the lost connection back (closed, so the pool replaces it) and take a fresh
        one; counted as a retried read."""
        db, old = self._db, self._conn
        assert old is not None
        if isinstance(old, ScopedConnection):
            old.discard = True
        with contextlib.suppress(Exception):
            await old.close()
        await db._pools[self._pool_name].putconn(old)
        self._conn = None
        new = await db._getconn(self._pool_name)
        self._conn = new
        db.read_retries[self._pool_name] += 1
        return new

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        db, conn, session = self._db, self._conn, self._session
        if conn is None or session is None:
            # a retried read could not get a fresh connection: nothing is checked out
            return
        pool_name = self._pool_name
        cause = exc.__cause__ if isinstance(exc, WedsyncDBError) else exc
        if isinstance(cause, psycopg.Error):
            db._note_scope_error(conn, cause)
        try:
            await session.close_scope(exc is None)
        finally:
            db._checks[pool_name].returned(conn)
            if isinstance(conn, ScopedConnection) and conn.discard:
                # a session that could not be cleaned is never handed out again
                await conn.close()
            await db._pools[pool_name].putconn(conn)
        if isinstance(exc, psycopg.Error):
            raise convert(exc, pool=pool_name) from exc


class _ScopeStartCache:
    """Validated, serialised and signed claims by the mapping they came from, so that a user's
    repeated scopes skip the work (bounded; the oldest entry goes first).

    The key holds every claim with its type (``1`` and ``True`` are equal in Python but not as
    JSON) and the signing key it was signed with; claims that cannot be hashed are not cached.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: dict[Any, ScopeStart] = {}

    @staticmethod
    def _key(claims: Claims | Mapping[str, Any], signing_key: bytes | None) -> Any:
        if isinstance(claims, Claims):
            return None
        try:
            key = (signing_key, tuple((k, type(v), v) for k, v in claims.items()))
            hash(key)
        except TypeError:
            return None
        return key

    def get(
        self, claims: Claims | Mapping[str, Any], signing_key: bytes | None
    ) -> ScopeStart | None:
        key = self._key(claims, signing_key)
        return None if key is None else self._entries.get(key)

    def put(
        self, claims: Claims | Mapping[str, Any], signing_key: bytes | None, start: ScopeStart
    ) -> None:
        key = self._key(claims, signing_key)
        if key is None:
            return
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = start


class _LivenessCheck:
    """Check connections on checkout unless they were returned moments ago, within a bound.

    A connection used within ``window`` seconds is known to be alive; skipping the probe saves a
    round trip on the hot path (HikariCP's aliveBypassWindowMs makes the same trade-off). The
    probe itself waits at most ``timeout`` seconds: psycopg_pool's own check has no deadline,
    so a hung server would hold a checkout far past the pool timeout. A failed check is
    remembered: a checkout that then times out is an outage, not a busy pool.
    """

    def __init__(self, window: float, timeout: float) -> None:
        self.window = window
        self.timeout = timeout
        self.last_failure: float | None = None
        self.last_error: str | None = None
        self._returned: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    async def check(self, conn: AsyncConnection[Any]) -> None:
        last = self._returned.get(conn)
        if last is not None and time.monotonic() - last < self.window:
            return
        try:
            await conn.wait(_empty_query(conn.pgconn), timeout=self.timeout)
        except BaseException as exc:
            self.last_failure = time.monotonic()
            self.last_error = (
                _first_line(exc)
                if not isinstance(exc, psycopg.errors._WaitTimeout)
                else (f"no answer within {self.timeout:g}s")
            )
            raise

    def returned(self, conn: AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    def failed_within(self, seconds: float) -> bool:
        """Whether a check failed in the last ``seconds``."""
        return self.last_failure is not None and time.monotonic() - self.last_failure <= seconds


def _empty_query(pgconn: Any) -> PQGen[None]:
    # the cheapest round trip: an empty query needs no transaction and returns EMPTY_QUERY
    return _round_trip(pgconn, b"", pq.ExecStatus.EMPTY_QUERY, "liveness check")


def _round_trip(pgconn: Any, query: bytes, expect: pq.ExecStatus, what: str) -> PQGen[None]:
    """Send one simple query and read all its results (a psycopg generator: any psycopg wait
    function drives it); an error, or no result of the ``expect`` kind, raises."""
    pgconn.send_query(query)
    results = yield from generators.execute(pgconn)
    for result in results:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise psycopg.OperationalError(
                (result.error_message or f"{what} failed".encode()).decode(errors="replace")
            )
    if not any(result.status == expect for result in results):
        raise psycopg.OperationalError(f"the {what} returned no result")


# libpq settings that bound a connection's life on a network that drops it silently: a connect
# attempt, idle detection (keepalives) and unacknowledged writes (tcp_user_timeout). A value in
# the DSN wins.
def _network_bounds(pool_timeout: float) -> dict[str, str]:
    return {
        "connect_timeout": str(max(2, math.ceil(pool_timeout))),
        "keepalives": "1",
        "keepalives_idle": "10",
        "keepalives_interval": "5",
        "keepalives_count": "3",
        "tcp_user_timeout": str(int(max(pool_timeout, 10.0) * 1000)),
    }


class Database:
    """Owns the user and service pools and their heartbeats."""

    def __init__(
        self,
        *,
        user_dsn: str,
        service_dsn: str,
        user_pool_size: int = 8,
        service_pool_size: int = 2,
        pool_timeout: float = 5.0,
        max_waiting: int = 200,
        max_lifetime: float = 1800.0,
        check_after: float = 1.0,
        transaction_pooler: bool = False,
        heartbeat_interval: float = 30.0,
        heartbeat_window: int = 120,
        query_timeout: float = 60.0,
        listen_dsn: str | None = None,
        feed_poll_interval: float = 1.0,
    ) -> None:
        self.pool_timeout = pool_timeout
        # the change feed's LISTEN connection: a direct one (never through a transaction
        # pooler), logging in as the service login; the hub starts with the first subscriber
        self.listen_dsn = listen_dsn or service_dsn
        self.feed_poll_interval = feed_poll_interval
        self.feed_hub: Any = None
        self.heartbeat_interval = heartbeat_interval
        self.query_timeout = query_timeout
        self.read_retries = {"user": 0, "service": 0}
        kwargs: dict[str, Any] = {"autocommit": False}
        if transaction_pooler:
            # a transaction pooler hands each transaction to a different server connection
            kwargs["prepare_threshold"] = None
        check_timeout = min(1.0, pool_timeout)
        self._checks = {
            "user": _LivenessCheck(check_after, check_timeout),
            "service": _LivenessCheck(check_after, check_timeout),
        }
        self._pools: dict[str, AsyncConnectionPool[Any]] = {}
        self._conninfo: dict[str, str] = {}
        self.outages = {name: OutageLog(name, log) for name in ("user", "service")}
        for name, dsn, size in (
            ("user", user_dsn, user_pool_size),
            ("service", service_dsn, service_pool_size),
        ):
            check = self._checks[name]
            _OUTAGES[f"wedsync-{name}"] = self.outages[name]
            given = conninfo_to_dict(dsn)
            bounds = {k: v for k, v in _network_bounds(pool_timeout).items() if k not in given}
            self._conninfo[name] = make_conninfo(
                dsn, application_name=f"wedsync:{name}-pool", **bounds
            )
            self._pools[name] = LifoConnectionPool(
                self._conninfo[name],
                min_size=min(size, 2),
                max_size=size,
                kwargs=kwargs,
                connection_class=ScopedConnection,
                configure=functools.partial(
                    _configure, query_timeout=query_timeout, connected=self.outages[name]
                ),
                open=False,
                name=f"wedsync-{name}",
                timeout=pool_timeout,
                max_waiting=max_waiting,
                max_lifetime=max_lifetime,
                max_idle=300.0,
                reconnect_timeout=300.0,
                check=check.check,
            )
        self.heartbeats = {
            name: HeartbeatState(pool=name, window=heartbeat_window) for name in self._pools
        }
        self._heartbeat_task = BackgroundTask(self._heartbeat_loop, "heartbeat")
        self._key: bytes | None = None
        self._key_loaded = False
        self._key_lock = asyncio.Lock()
        self._user_starts = _ScopeStartCache()

    # --- lifecycle ----------------------------------------------------------------------------
    async def open(self, *, wait: bool = True, timeout: float = 30.0) -> None:
        """Open both pools; with ``wait`` fail fast when the database is unreachable."""
        if wait:
            # one plain connection per pool first: a refused login fails at once with the
            # server's reason instead of after the pool's retries. The service pool first: its
            # login (the migrating one) tells a missing database apart from a missing role
            for name in sorted(self._pools, key=lambda n: n != "service"):
                try:
                    async with asyncio.timeout(timeout):
                        conn = await AsyncConnection.connect(self._conninfo[name])
                    await conn.close()
                except Exception as exc:
                    reason = _hinted(_first_line(exc))
                    raise DatabaseUnavailable(
                        f"cannot connect the {name} pool: {reason}", pool=name
                    ) from exc
        for name, pool in self._pools.items():
            try:
                await pool.open(wait=wait, timeout=timeout)
            except Exception as exc:
                await self.close()
                raise DatabaseUnavailable(
                    f"could not open the {name} pool within {timeout:g}s: {_first_line(exc)}"
                ) from exc
        if wait:
            await self._claims_key()

    async def close(self) -> None:
        """Stop the heartbeat and the change feed, and close both pools."""
        await self.stop_heartbeat()
        if self.feed_hub is not None:
            await self.feed_hub.close()
        for pool in self._pools.values():
            await pool.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- scopes -------------------------------------------------------------------------------
    def as_user(self, claims: Claims | Mapping[str, Any]) -> Scope:
        """One transaction as ``authenticated`` with the signed claims set locally; RLS
        applies. Use as ``async with db.as_user(claims) as s``."""
        return Scope(self, "user", claims=claims)

    def service(self, reason: str) -> Scope:
        """One transaction as ``service_role`` (bypasses RLS); ``reason`` is recorded in claims."""
        if not reason or not reason.strip():
            raise ValueError("db.service() needs a non-empty reason")
        text = json.dumps({"role": "service_role", "reason": reason.strip()})
        start = ScopeStart(False, "service_role", text, "", "wedsync:service")
        return Scope(self, "service", start)

    def ops(self, reason: str) -> Scope:
        """One transaction as the service pool's login (monitoring, administration)."""
        text = json.dumps({"role": "ops", "reason": reason})
        return Scope(self, "service", ScopeStart(False, None, text, "", "wedsync:ops"))

    async def _user_start(self, claims: Claims | Mapping[str, Any]) -> ScopeStart:
        """The user scope's first-statement values: validated, serialised and signed once per
        distinct claims."""
        if self._key_loaded:
            start = self._user_starts.get(claims, self._key)
            if start is not None:
                return start
        c = Claims.coerce(claims)  # bad claims are refused before anything connects
        key = self._key if self._key_loaded else await self._claims_key()
        text = c.to_json()
        start = ScopeStart(True, c.role, text, self._sign(text, key), f"wedsync:{c.aud}")
        self._user_starts.put(claims, key, start)
        return start

    def _note_scope_error(self, conn: AsyncConnection[Any], exc: psycopg.Error) -> None:
        if exc.sqlstate == "WS401":
            # the database refused our signature: the key may have been rotated
            self._key_loaded = False
        if exc.sqlstate in RESETTABLE_STATES and isinstance(conn, ScopedConnection):
            conn.discard = True

    # --- signed claims ------------------------------------------------------------------------
    def _sign(self, claims: str, key: bytes | None = None) -> str:
        """HMAC-SHA256 of the claims JSON under the database's claims key ('' without one)."""
        key = key if key is not None else self._key
        if key is None:
            return ""
        return hmac.new(key, claims.encode(), hashlib.sha256).hexdigest()

    async def _claims_key(self) -> bytes | None:
        """The database's claims signing key, read once through the service pool."""
        if not self._key_loaded:
            async with self._key_lock:
                if not self._key_loaded:
                    await self._load_claims_key()
        return self._key

    async def _load_claims_key(self) -> None:
        try:
            async with self._pools["service"].connection(timeout=self.pool_timeout) as conn:
                cur = await conn.execute(_client_sql("claims_key_exists"))
                exists = await cur.fetchone()
                key: bytes | None = None
                if exists and exists[0]:
                    cur = await conn.execute(_client_sql("claims_key"))
                    row = await cur.fetchone()
                    key = bytes(row[0]) if row else None
                await conn.commit()
        except Exception as exc:
            converted = await self._checkout_error("service", exc)
            if isinstance(converted, WedsyncDBError):
                raise converted from exc
            raise
        self._key, self._key_loaded = key, True

    async def _getconn(self, pool_name: str) -> AsyncConnection[Any]:
        try:
            conn: AsyncConnection[Any] = await self._pools[pool_name].getconn(
                timeout=self.pool_timeout
            )
            return conn
        except Exception as exc:
            converted = await self._checkout_error(pool_name, exc)
            if converted is exc:
                raise
            raise converted from exc

    async def _checkout_error(self, pool_name: str, exc: BaseException) -> BaseException:
        """PoolExhausted for a busy pool; DatabaseUnavailable when the database is the reason."""
        if isinstance(exc, psycopg_pool.TooManyRequests):
            pool = self._pools[pool_name]
            waiting = pool.get_stats().get("requests_waiting") or pool.max_waiting
            return PoolExhausted(pool_name, self.pool_timeout, waiting=waiting)
        if isinstance(exc, psycopg_pool.PoolTimeout):
            outage = await self._outage(pool_name)
            if outage is not None:
                return DatabaseUnavailable(
                    f"the {pool_name} pool got no working connection within "
                    f"{self.pool_timeout:g}s: {outage}"
                )
        return convert(exc, pool=pool_name, timeout=self.pool_timeout)

    async def _outage(self, pool_name: str) -> str | None:
        """Why a checkout that timed out points at the database rather than a busy pool: a
        liveness check failed meanwhile, the heartbeat is failing, or the server does not take
        a new connection within a second (asked only here, on the failure path)."""
        check = self._checks[pool_name]
        if check.failed_within(self.pool_timeout + 1.0):
            return f"connections failed their liveness check ({check.last_error})"
        hb = self.heartbeats[pool_name]
        if hb.consecutive_failures:
            return f"the heartbeat is failing ({hb.last_error})"
        try:
            async with asyncio.timeout(1.0):
                conn = await AsyncConnection.connect(self._conninfo[pool_name])
            await conn.close()
        except TimeoutError:
            return "the server accepted no new connection within 1s"
        except psycopg.Error as exc:
            return f"the server takes no new connection: {_first_line(exc)}"
        return None

    # --- heartbeat ----------------------------------------------------------------------------
    async def probe(self, pool_name: str, *, record: bool = True) -> float:
        """One heartbeat probe on a pool; returns (and with ``record`` stores) the round-trip
        latency in ms.

        The round trip is timed in a worker thread: timed on a busy event loop it would report
        the API's own backlog as database latency.
        """
        state = self.heartbeats[pool_name]
        if record:
            state.probe_started()
        try:
            async with asyncio.timeout(self.probe_bound):
                async with self._pools[pool_name].connection(timeout=self.pool_timeout) as conn:
                    worker = asyncio.ensure_future(
                        asyncio.to_thread(_timed_round_trip, conn, PROBE_TIMEOUT)
                    )
                    try:
                        latency = await asyncio.shield(worker)
                    except BaseException:
                        # the thread may still be using the connection (on cancellation): let
                        # it finish (bounded by PROBE_TIMEOUT), then discard the connection
                        with contextlib.suppress(BaseException):
                            await worker
                        await conn.close()
                        raise
        except Exception as exc:
            converted = await self._checkout_error(pool_name, exc)
            if isinstance(exc, TimeoutError):
                converted = DatabaseUnavailable(
                    f"the {pool_name} pool's probe got no answer within {PROBE_TIMEOUT:g}s"
                )
            if record:
                state.record_failure(_first_line(converted))
                self.outages[pool_name].failed(_first_line(converted))
            raise DatabaseUnavailable(_first_line(converted)) from exc
        if record:
            state.record_success(latency)
            self.outages[pool_name].recovered()
        return latency

    @property
    def probe_bound(self) -> float:
        """The longest a heartbeat probe can take (checkout, then the round trip)."""
        return self.pool_timeout + PROBE_TIMEOUT + 1.0

    @property
    def heartbeat_stale_after(self) -> float:
        """Seconds without a successful probe after which health reports the pool failing:
        one interval plus the pool timeout."""
        return self.heartbeat_interval + self.pool_timeout

    async def probe_all(self) -> None:
        """Probe every pool once, concurrently, recording failures instead of raising."""

        async def one(name: str) -> None:
            with contextlib.suppress(WedsyncDBError):
                await self.probe(name)

        await asyncio.gather(*(one(name) for name in self._pools))

    def start_heartbeat(self) -> None:
        """Probe both pools every ``heartbeat_interval`` seconds in the background."""
        self._heartbeat_task.start()

    async def stop_heartbeat(self) -> None:
        """Cancel the background heartbeat."""
        await self._heartbeat_task.stop()

    async def _heartbeat_loop(self) -> None:
        # while a pool fails, probe every second so that recovery shows at once
        policy = Backoff(self.heartbeat_interval, min(1.0, self.heartbeat_interval), factor=1.0)
        while True:
            await self.probe_all()
            failing = max(hb.consecutive_failures for hb in self.heartbeats.values())
            await asyncio.sleep(policy.delay(failing))

    def heartbeat_snapshots(self) -> dict[str, HeartbeatSnapshot]:
        """Current heartbeat summaries per pool (no I/O)."""
        return {name: state.snapshot() for name, state in self.heartbeats.items()}

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """psycopg_pool counters per pool (sizes, waits, errors), and reads retried."""
        return {
            name: {**pool.get_stats(), "read_retries": self.read_retries[name]}
            for name, pool in self._pools.items()
        }


async def _configure(
    conn: AsyncConnection[Any],
    *,
    query_timeout: float | None = None,
    connected: OutageLog | None = None,
) -> None:
    # the one-round-trip read path relies on READ COMMITTED semantics (see db/session.py)
    cur = await conn.execute(_client_sql("connection_facts"))
    row = await cur.fetchone()
    await conn.commit()
    if connected is not None:
        connected.recovered()
    if isinstance(conn, ScopedConnection):
        conn.op_timeout = query_timeout
    if isinstance(conn, ScopedConnection) and row is not None:
        conn.read_committed = row[0] == "read committed"
        conn.default_isolation = str(row[0]).upper().encode()
        conn.prepared_visible = bool(row[1])
        conn.temp_allowed = bool(row[2])


_client_sql = statements("wedsync_db.db", "sql/scopes.sql")


# a heartbeat answer slower than this counts as a failed probe
PROBE_TIMEOUT = 5.0


def _timed_round_trip(conn: AsyncConnection[Any], timeout: float) -> float:
    """`select 1` on an idle, checked-out connection, driven by psycopg's blocking wait
    function (with a deadline) so that only the database's answer is timed; milliseconds."""
    pgconn = conn.pgconn
    started = time.perf_counter()
    try:
        waiting.wait(
            _round_trip(pgconn, b"select 1", pq.ExecStatus.TUPLES_OK, "probe"),
            pgconn.socket,
            interval=timeout,
            timeout=timeout,
        )
    except psycopg.errors._WaitTimeout:
        raise TimeoutError from None
    return (time.perf_counter() - started) * 1000.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def user_dsn_for(dsn: str, password: str | None = None) -> str:
    """The user pool's DSN: same server and database, logging in as the authenticator role."""
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if k != "password" and v is not None}
    params["user"] = AUTHENTICATOR_ROLE
    if password is not None:
        params["password"] = password
    return make_conninfo("", **params)
