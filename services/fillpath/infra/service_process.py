"""Service processes started from Python: the benchmark's servers, the crash tests' OMS.

A service prints one line ``<name> listening on <host>:<port>`` when it serves (a process that
serves nothing names what it is ready for, e.g. ``fillpath-relay publishing to <url>``);
`spawn_service` waits for it and keeps draining the output afterwards, so the child never blocks
on a full pipe.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_READY = " listening on "


@dataclass(slots=True)
class ServiceProcess:
    process: subprocess.Popen[str]
    address: str
    output: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing — a crash."""
        self.process.kill()
        self.process.wait()


def spawn_service(
    module: str,
    env: Mapping[str, str],
    *,
    args: Sequence[str] = (),
    log_file: Path | None = None,
    timeout: float = 60.0,
    ready_after: str = _READY,
) -> ServiceProcess:
    """Runs ``python -m module`` with `env` added to this environment; waits until it prints
    a line with `ready_after`, and takes what follows it on the line as the address."""
    stderr = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    if log_file:
        stderr.close()  # type: ignore[union-attr]
    assert process.stdout is not None
    output: list[str] = []
    ready = threading.Event()
    address: list[str] = []

    def drain() -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                output.append(line.rstrip())
                if not ready.is_set() and ready_after in line:
                    address.append(line.rsplit(ready_after, 1)[1].strip())
                    ready.set()
        ready.set()

    threading.Thread(target=drain, name=f"drain-{module}", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05):
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"{module} did not start serving within {timeout}s")
    if not address:
        process.wait()
        raise RuntimeError(
            f"{module} exited with {process.returncode} before serving: {' | '.join(output[-5:])}"
        )
    return ServiceProcess(process=process, address=address[0], output=output)
