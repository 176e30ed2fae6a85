"""The README's runnable command blocks (a fenced block right after `<!-- runnable -->`) run
against a fresh migrated database, and every command exits 0."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from fixtures.environment import tracks_statements
from fixtures.migration_support import WEDSYNC_DB, cli_env

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
