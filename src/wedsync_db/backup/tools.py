"""PostgreSQL's own backup tools, found next to the server in use, and run without secrets on
their command line."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wedsync_db.errors import BackupError

TOOLS = (
    "pg_basebackup",
    "pg_combinebackup",
    "pg_verifybackup",
    "pg_amcheck",
    "pg_archivecleanup",
    "pg_ctl",
    "pg_dump",
    "pg_restore",
    "initdb",
    "postgres",
)

# the environment variables a tool inherits
PASSED_ENV = frozenset({"PATH", "HOME", "TMPDIR", "TZ", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"})


@dataclass(frozen=True)
class Toolbox:
    """Where the binaries are, and as whom a server started from a restored copy runs."""

    bin_dir: Path
    # the unprivileged account a server started by root runs as (the embedded convention)
    run_as: str | None = None

    def path(self, name: str) -> Path:
        """The binary ``name``; a clear error naming it when the installation lacks it."""
        path = self.bin_dir / name
        if not path.exists():
            raise BackupError(
                f"{name} is not in {self.bin_dir}: the backup commands use the tools that ship "
                "with the server; install them (the postgresql-client package of the server's "
                "version) or point WEDSYNC_PG_BIN_DIR at them"
            )
        return path

    def run(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        as_server: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run a tool; a failure raises BackupError with the tool's own message (passwords
        travel in ``env``, never in ``args``)."""
        # only what a tool needs: no PG* variable may redirect it, and the process's
        # secrets (service key, DSNs) never reach a tool or a server started from a backup
        full_env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        full_env["LC_ALL"] = "C"
        full_env.update(env or {})
        try:
            return subprocess.run(
                [str(self.path(name)), *args],
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=full_env,
                user=self.run_as if as_server else None,
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or exc.stdout or "").strip()
            raise BackupError(f"{name} failed: {output}") from None
        except subprocess.TimeoutExpired:
            raise BackupError(f"{name} did not finish within {timeout:g}s") from None


def find_bin_dir(server_version: int, configured: Path | None = None) -> Path:
    """The binaries of the server in use: the configured directory, the embedded server's, or
    the distribution's for the server's major version, then ``pg_config --bindir``."""
    major = server_version // 10000
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    try:
        from wedsync_db.embedded import bin_dir

        embedded = bin_dir()
        version = _major_of(embedded)
        if version == major:
            candidates.append(embedded)
    except Exception:
        pass
    candidates.append(Path(f"/usr/lib/postgresql/{major}/bin"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    for candidate in candidates:
        if (candidate / "pg_basebackup").exists() and _major_of(candidate) == major:
            return candidate
    raise BackupError(
        f"no PostgreSQL {major} binaries found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "): the backup tools must match the server's major version; set WEDSYNC_PG_BIN_DIR"
    )


def _major_of(directory: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(directory / "pg_basebackup"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        return int(out.split()[-1].split(".")[0])
    except (ValueError, IndexError):
        return None
