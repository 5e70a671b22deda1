"""One gRPC service, several processes, one port.

A Python process runs one thread of Python at a time, so a CPU-bound service scales past one
core only with more processes. Each worker process runs its own server on the same port with
SO_REUSEPORT, and the kernel spreads incoming connections across them; all of them share the
state that matters (Postgres, Redis), which is what the OMS's optimistic concurrency is for.

Workers are started with `spawn`, not `fork` (gRPC's core is not fork-safe once it has
started), and die with their parent (PR_SET_PDEATHSIG): killing the service kills all of it,
so a SIGKILL is a crash of the whole service, never a half-alive one.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

_PR_SET_PDEATHSIG = 1

WorkerTarget = Callable[[int, str, Any], None]


def die_with_parent(parent_pid: int) -> None:
    """Asks the kernel to SIGKILL this process when its parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before we asked
        os._exit(1)


def _reserve(host: str) -> socket.socket:
    """A port for the workers to share: bound (with SO_REUSEPORT), never listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    placeholder = socket.socket(family, socket.SOCK_STREAM)
    placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    placeholder.bind((host, 0))
    return placeholder


def _check_free(host: str, port: int) -> None:
    """Fails if something already listens on the port: with SO_REUSEPORT a stale instance
    would otherwise quietly share it with the new one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: connections of a previous run still in TIME_WAIT are no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise OSError(f"cannot listen on {host}:{port}: {err.strerror}") from err


def _run_worker(target: WorkerTarget, index: int, address: str, ready: Any, parent: int) -> None:
    die_with_parent(parent)
    target(index, address, ready)


def run_workers(count: int, address: str, target: WorkerTarget) -> tuple[str, Callable[[], int]]:
    """Starts `count` processes running ``target(index, address, ready)``.

    Each target serves on `address` with SO_REUSEPORT, puts its index on the `ready` queue
    once it serves, and returns when it has stopped (on SIGTERM). Returns the address (port 0
    replaced by the one chosen) and a function that waits until a signal arrives or a worker
    exits, stops them all and returns an exit code.
    """
    host, port = address.rsplit(":", 1)
    if port != "0":
        _check_free(host.strip("[]"), int(port))
    placeholder = _reserve(host.strip("[]")) if port == "0" else None
    if placeholder is not None:
        address = f"{host}:{placeholder.getsockname()[1]}"
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    processes: list[BaseProcess] = [
        context.Process(
            target=_run_worker,
            args=(target, index, address, ready, os.getpid()),
            name=f"worker-{index}",
        )
        for index in range(count)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=120)
    except Exception:
        _stop(processes)
        raise
    finally:
        if placeholder is not None:
            placeholder.close()

    def wait() -> int:
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        while not stopping.is_set():
            if any(not p.is_alive() for p in processes):
                break  # a worker died: stop the rest, exit non-zero, let the supervisor restart
            stopping.wait(0.5)
        failed = not stopping.is_set()
        _stop(processes)
        return 1 if failed else 0

    return address, wait


def _stop(processes: list[BaseProcess], timeout: float = 10.0) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
