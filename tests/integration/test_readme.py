"""The README's runnable command blocks (a fenced block right after `<!-- runnable -->`) run
against a fresh migrated database, and every command exits 0; its application examples (the
quick start, the data layer, the data API with curl) run against the demo seed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fixtures.environment import tracks_statements
from fixtures.migration_support import WEDSYNC_DB, cli_env
from wedsync_db.embedded import free_port

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- runnable -->"
_BLOCK = re.compile(r"^<!-- runnable -->\n```(?:sh|bash|console)?\n(.*?)^```$", re.M | re.S)


def runnable_blocks(text: str) -> list[list[str]]:
    """The commands of each marked block (comments and blank lines left out)."""
    blocks = []
    for match in _BLOCK.finditer(text):
        commands = []
        for line in match.group(1).splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(command)
        blocks.append(commands)
    return blocks


def test_every_marker_starts_a_block() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.splitlines().count(MARKER) == len(runnable_blocks(text)) >= 1


def test_the_runnable_readme_blocks_run(fresh_db: str, tmp_path: Path) -> None:
    env = cli_env(fresh_db, tmp_path, COLUMNS="80")
    env["PATH"] = f"{WEDSYNC_DB.parent}{os.pathsep}{env['PATH']}"
    commands = [c for block in runnable_blocks(README.read_text(encoding="utf-8")) for c in block]
    assert any(c.startswith("wedsync-db demo seed") for c in commands)
    tracked = tracks_statements(fresh_db)
    for command in commands:
        # without pg_stat_statements preloaded (a stock server) the statement report refuses,
        # saying how to enable it
        refuses = not tracked and command.startswith("wedsync-db inspect queries")
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if refuses:
            assert proc.returncode == 1 and "shared_preload_libraries" in proc.stderr, command
            continue
        assert proc.returncode == 0, (command, proc.returncode, proc.stdout, proc.stderr)


SEED = "demo seed --organizations 3 --weddings 4 --guests-per-wedding 20 --seed 7 --json"


def example(marker: str) -> str:
    """The fenced block right after ``<!-- marker -->``."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\n```\w+\n(.*?)^```$", text, re.M | re.S)
    assert found is not None, marker
    return found.group(1)


def seeded(dsn: str, workdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The CLI environment and the samples of a demo seed."""
    env = cli_env(dsn, workdir)
    seed = subprocess.run(
        [str(WEDSYNC_DB), *SEED.split()], env=env, capture_output=True, text=True, timeout=120
    )
    assert seed.returncode == 0, seed.stderr
    return env, json.loads(seed.stdout)["samples"]


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("clients-example", ["guests; ", "accepted", "guests of other weddings visible: 0"]),
        ("data-layer-example", ["table 3 version 2"]),
    ],
)
def test_the_python_examples_run_against_the_demo_seed(
    fresh_db: str, tmp_path: Path, marker: str, expected: list[str]
) -> None:
    script = tmp_path / "example.py"
    script.write_text(example(marker), encoding="utf-8")
    env, samples = seeded(fresh_db, tmp_path)
    run = subprocess.run(
        [sys.executable, str(script), samples["couple_user_id"], samples["couple_wedding_id"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert all(e in run.stdout for e in expected), run.stdout


def test_the_curl_flow_runs_against_up(fresh_db: str, tmp_path: Path) -> None:
    """`wedsync-db up` serves; the README's curl block (seed, token, list, ETag, 200, 412,
    428) runs as written, with `.venv/bin` on PATH."""
    port = free_port()
    env = cli_env(fresh_db, tmp_path)
    env.pop("WEDSYNC_SERVICE_KEY")  # as in development: generated, like the JWT secret
    env["PATH"] = f"{WEDSYNC_DB.parent}{os.pathsep}{env['PATH']}"
    server = subprocess.Popen(
        [str(WEDSYNC_DB), "up", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    api = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                if httpx.get(f"{api}/api/database/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "up did not become ready"
            time.sleep(0.3)
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", example("http-example")],
            env={**env, "API": api},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        server.terminate()
        printed, _ = server.communicate(timeout=30)
    assert run.returncode == 0, (run.stdout, run.stderr)
    # `up` says where the data API is and which file `wedsync-db token` signs with
    assert f"data API          {api}/api/v1" in printed
    assert f"JWT secret file     {tmp_path / '.wedsync' / 'jwt_secret'}" in printed
    out = run.stdout
    assert '"next_cursor"' in out and 'etag: "1"' in out.lower()
    assert '"version":2' in out and '"conflicting_fields":["table_number"]' in out
    assert out.rstrip().endswith("428")
