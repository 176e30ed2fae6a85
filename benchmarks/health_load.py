"""Public `GET /api/database/health` vs a bare constant endpoint on the same uvicorn server.

One server process (our app wired as `wedsync-db up` wires it, plus a `/bench/bare` route
added by this benchmark's wrapper only) listens on an ephemeral 127.0.0.1 port; a separate
load process holds 1000 keep-alive HTTP/1.1 connections. The targets alternate, phase by phase:

* paced: the 1000 connections send at a fixed total rate (default 1000 req/s, one request per
  connection per second, like a fleet of load balancers polling), latency counted from each
  request's scheduled time so that a stall is not hidden. The p99 target applies here.
* saturation: every connection sends its next request as soon as the previous answer
  arrives; requests/s give the throughput ratio. With 1000 requests always in flight, latency
  in this phase is queueing (Little's law: 1000 / requests/s), alike for both targets.

Every HTTP answer counts for throughput; anything but 200 is also counted as an error.
Last line: `health/bare throughput ratio: X.XX` (target ≥ 0.8; p99 ≤ 50 ms; 0 errors).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEALTH = "/api/database/health"
BARE = "/bench/bare"
REQUEST_TIMEOUT = 5.0


def raise_open_file_limit(wanted: int = 65536) -> None:
    """1000 sockets each side need more descriptors than the usual soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- server process -------------------------------------------------------------------------
def serve(dsn: str, data_dir: str) -> None:
    """Serve our app plus the bare route on an ephemeral port (printed first) until killed."""
    import uvicorn
    from fastapi import Response
    from pydantic import SecretStr

    from wedsync_db.api.app import create_app
    from wedsync_db.migrate.runner import MigrationRunner, RunnerOptions
    from wedsync_db.runtime import database_for
    from wedsync_db.settings import Settings

    settings = Settings(
        _env_file=None,
        service_key=SecretStr(secrets.token_urlsafe(32)),
        data_dir=Path(data_dir),
    )
    # the product's own wiring: pool sizes, heartbeat interval and sampler from the defaults
    database = database_for(settings, dsn)
    runner = MigrationRunner(dsn, options=RunnerOptions(actor="benchmark"))
    app = create_app(settings, database=database, runner=runner)
    bare_body = b'{"status":"pass"}'

    @app.get(BARE, include_in_schema=False)
    async def bare() -> Response:
        return Response(bare_body, media_type="application/json")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # as uvicorn sets it when it binds the port itself (`wedsync-db up`); a socket handed over
    # without it waits for delayed ACKs (~40 ms) between a response's header and body writes
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        backlog=4096,
        timeout_keep_alive=60,
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


# --- load process ---------------------------------------------------------------------------
class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        status = int(head.split(" ", 2)[1])
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    async def request(self, payload: bytes) -> int:
        if self.transport is None:
            raise ConnectionError("not connected")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await asyncio.wait_for(self.waiter, REQUEST_TIMEOUT)


@dataclass
class PhaseResult:
    path: str
    mode: str
    connections: int
    seconds: float
    # every HTTP answer counts for throughput; anything but 200 is also an error
    requests: int
    statuses: dict[str, int]
    # connections lost or requests unanswered within REQUEST_TIMEOUT
    failures: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.failures + sum(n for code, n in self.statuses.items() if code != "200")


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def _load(
    port: int, path: str, connections: int, seconds: float, rate: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    payload = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    gate = asyncio.Semaphore(100)  # do not overflow the listen backlog while connecting

    async def connect() -> _Connection:
        async with gate:
            _, protocol = await loop.create_connection(_Connection, "127.0.0.1", port)
            return protocol

    conns = await asyncio.gather(*(connect() for _ in range(connections)))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures = 0
    start = time.perf_counter() + 0.05
    deadline = start + seconds

    def answered(status: int, since: float) -> None:
        latencies.append(time.perf_counter() - since)
        statuses[status] = statuses.get(status, 0) + 1

    async def closed_loop(conn: _Connection) -> None:
        nonlocal failures
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        while (t0 := time.perf_counter()) < deadline:
            try:
                answered(await conn.request(payload), t0)
            except (ConnectionError, TimeoutError):
                failures += 1
                return

    async def paced(conn: _Connection) -> None:
        # each connection sends every `interval` seconds from a random offset; latency counts
        # from the scheduled time, so time spent behind schedule is not lost
        nonlocal failures
        interval = connections / rate
        scheduled = start + random.random() * interval
        while scheduled < deadline:
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            try:
                answered(await conn.request(payload), scheduled)
            except (ConnectionError, TimeoutError):
                failures += 1
                return
            scheduled += interval

    worker = paced if rate > 0 else closed_loop
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = min(time.perf_counter(), deadline + REQUEST_TIMEOUT) - start
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    latencies.sort()
    return {
        "path": path,
        "mode": "paced" if rate > 0 else "saturation",
        "connections": connections,
        "seconds": max(elapsed, seconds),
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "failures": failures,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
    }


def load_main(port: int, path: str, connections: int, seconds: float, rate: float) -> None:
    """Entry point of the load process: print one JSON result line."""
    raise_open_file_limit()
    result = asyncio.run(_load(port, path, connections, seconds, rate))
    print(json.dumps(result), flush=True)


def run_phase(
    port: int, path: str, connections: int, seconds: float, rate: float = 0.0
) -> PhaseResult:
    """One phase in a separate load process."""
    argv = [
        sys.executable,
        __file__,
        "--load",
        str(port),
        path,
        str(connections),
        str(seconds),
        str(rate),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load process failed:\n{done.stderr[-2000:]}")
    return PhaseResult(**json.loads(done.stdout.strip().splitlines()[-1]))


# --- orchestration --------------------------------------------------------------------------
def _wait_until_healthy(port: int, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"the health endpoint did not answer 200 within {timeout:g}s: {last}")


def _summary(results: list[PhaseResult]) -> PhaseResult:
    """Merge the rounds of one target and mode: requests/s over all, the worst percentiles."""
    first = results[0]
    statuses: dict[str, int] = {}
    for r in results:
        for code, n in r.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    return PhaseResult(
        path=first.path,
        mode=first.mode,
        connections=first.connections,
        seconds=sum(r.seconds for r in results),
        requests=sum(r.requests for r in results),
        statuses=statuses,
        failures=sum(r.failures for r in results),
        p50_ms=max(r.p50_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
    )


def main(connections: int, seconds: float, rounds: int, rate: float) -> float:
    """Start the server, alternate the targets, print the results; returns the ratio."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import benchmark_database, migrate, stop_process

    raise_open_file_limit()
    with benchmark_database() as dsn, tempfile.TemporaryDirectory() as data_dir:
        asyncio.run(migrate(dsn))
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", data_dir],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "WEDSYNC_BENCH_DSN": dsn},
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            _wait_until_healthy(port)
            # warm-up at the paced rate, not recorded
            for path in (BARE, HEALTH):
                run_phase(port, path, connections, 1.0, rate)
            # paced first: the latency targets apply below saturation
            paced: dict[str, list[PhaseResult]] = {BARE: [], HEALTH: []}
            saturation: dict[str, list[PhaseResult]] = {BARE: [], HEALTH: []}
            for i in range(rounds):
                order = (BARE, HEALTH) if i % 2 == 0 else (HEALTH, BARE)
                for path in order:
                    paced[path].append(run_phase(port, path, connections, seconds, rate))
            for i in range(rounds):
                order = (BARE, HEALTH) if i % 2 == 0 else (HEALTH, BARE)
                for path in order:
                    saturation[path].append(run_phase(port, path, connections, seconds))
        finally:
            stop_process(server, timeout=20)

    print(
        f"connections: {connections} keep-alive, {rounds} round(s) of {seconds:g} s per target "
        "and phase, 127.0.0.1"
    )
    for mode, table in ((f"paced at {rate:.0f} req/s", paced), ("saturation", saturation)):
        for path in (HEALTH, BARE):
            r = _summary(table[path])
            name = "health" if path == HEALTH else "bare  "
            codes = " ".join(f"{code}×{n}" for code, n in r.statuses.items())
            print(
                f"{name} {mode:<22} {r.rps:8.0f} req/s  p50 {r.p50_ms:7.1f} ms  "
                f"p99 {r.p99_ms:7.1f} ms  errors {r.errors}  ({codes}; lost {r.failures})"
            )
    bare_rps = _summary(saturation[BARE]).rps
    ratio = _summary(saturation[HEALTH]).rps / bare_rps
    print(f"health/bare throughput ratio: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        serve(os.environ["WEDSYNC_BENCH_DSN"], sys.argv[2])
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        _, _, port_arg, path_arg, conns_arg, secs_arg, rate_arg = sys.argv
        load_main(int(port_arg), path_arg, int(conns_arg), float(secs_arg), float(rate_arg))
        sys.exit(0)
    from _common import sizes

    args = sizes(
        __doc__,
        connections=(1000, 100),
        seconds=(5.0, 1.0, "per target and phase"),
        rounds=(2, 1, "alternating rounds per phase"),
        rate=(1000.0, 200.0, "total requests/s of the paced phase"),
    )
    main(args.connections, args.seconds, args.rounds, args.rate)
