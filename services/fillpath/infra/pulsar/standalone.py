"""A standalone Apache Pulsar broker on loopback, for `fillpath up --bus pulsar` and the tests.

The broker is Java: Maven resolves `org.apache.pulsar:pulsar-broker` (pinned in pom.xml beside
this file) from Maven Central into a cache outside the checkout, once; later starts take a few
seconds. `PulsarStandaloneStarter` then runs one broker with one in-process bookie and RocksDB
metadata under a data directory, listening on 127.0.0.1 only, with broker deduplication on.

The broker runs in a session of its own, so a service killed with SIGKILL leaves it running, and
the next start in the same data directory finds it by its pid file and reuses it.

`python -m fillpath.infra.pulsar.standalone fetch` fills the cache (the Makefile calls it);
`... run DATA_DIR` runs a broker in the foreground until interrupted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fillpath.infra.cache import cache_dir
from fillpath.infra.grpc_server import wait_for_signal

PULSAR_VERSION = "4.0.7"
_MAIN_CLASS = "org.apache.pulsar.PulsarStandaloneStarter"
_START_TIMEOUT = 120.0

# What Pulsar's own launcher passes to Java 17, so the broker may reach the JDK internals it
# reads (GC and memory metrics, direct buffers) instead of logging a stack trace for each.
_JAVA_OPENS = [
    f"--add-opens={module}=ALL-UNNAMED"
    for module in (
        "java.base/java.io",
        "java.base/java.nio",
        "java.base/sun.net",
        "java.base/jdk.internal.misc",
        "java.management/sun.management",
        "jdk.management/com.sun.management.internal",
    )
]

# A broker for one machine: a few hundred MB, loopback only, every replication factor 1.
_JAVA_MEMORY = ["-Xms128m", "-Xmx512m", "-XX:MaxDirectMemorySize=256m"]

_LOG4J = """\
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{ISO8601}} %-5p [%t] %c{{1}}: %m%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
logger.ready.name = org.apache.pulsar.PulsarStandaloneStarter
logger.ready.level = info
"""


def _config(ports: _Ports) -> str:
    settings = {
        "clusterName": "standalone",
        "bindAddress": "127.0.0.1",
        "advertisedAddress": "127.0.0.1",
        # The bookie binds to this interface's address instead of every interface.
        "listeningInterface": "lo",
        "allowLoopback": "true",
        "brokerServicePort": ports.broker,
        "webServicePort": ports.web,
        "managedLedgerDefaultEnsembleSize": 1,
        "managedLedgerDefaultWriteQuorum": 1,
        "managedLedgerDefaultAckQuorum": 1,
        "loadManagerClassName": "org.apache.pulsar.broker.loadbalance.NoopLoadManager",
        "loadBalancerEnabled": "false",
        # A producer's messages are stored once per sequence id: what the outbox relay's
        # exactly-once publishing rests on.
        "brokerDeduplicationEnabled": "true",
        # Messages stay a day after every subscription has them, so a service subscribing
        # later (which starts at the oldest message) still finds what was published meanwhile.
        "defaultRetentionTimeInMinutes": 24 * 60,
        "defaultRetentionSizeInMB": 1024,
        "allowAutoTopicCreation": "true",
        "allowAutoTopicCreationType": "non-partitioned",
        "functionsWorkerEnabled": "false",
        "ledgerStorageClass": "org.apache.bookkeeper.bookie.storage.ldb.DbLedgerStorage",
        # The bookie fsyncs its journal before the broker acknowledges a message: once the
        # relay has moved its checkpoint past an event, the broker alone holds it for the bus.
        "journalSyncData": "true",
        # Low latency over large batches: the bookie writes its journal as soon as it has an
        # entry, and a caught-up subscription looks for new entries every millisecond.
        "journalFlushWhenQueueEmpty": "true",
        "managedLedgerNewEntriesCheckDelayInMillis": 1,
        "dbStorage_writeCacheMaxSizeMb": 16,
        "dbStorage_readAheadCacheMaxSizeMb": 16,
        "dbStorage_rocksDB_blockCacheSize": 16 * 1024 * 1024,
        "managedLedgerCacheSizeMB": 32,
        "diskUsageThreshold": 0.99,
        "diskUsageWarnThreshold": 0.99,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def jars_dir() -> Path:
    return cache_dir() / f"pulsar-{PULSAR_VERSION}" / "lib"


def fetch_jars() -> Path:
    """Resolves the broker's jars with Maven into the cache (once) and returns their folder."""
    lib = jars_dir()
    if lib.is_dir():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("the standalone Pulsar broker needs Maven (mvn) on PATH to fetch it")
    here = resources.files("fillpath.infra.pulsar")
    lib.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=lib.parent))
    command = [mvn, "--batch-mode", "--quiet", "dependency:copy-dependencies"]
    command += ["-DincludeScope=runtime", f"-DoutputDirectory={staging}"]
    try:
        with (
            resources.as_file(here / "pom.xml") as pom,
            resources.as_file(here / "maven-settings.xml") as maven_settings,
        ):
            subprocess.run([*command, "--settings", maven_settings, "--file", pom], check=True)
        # Whole or not at all: a half-fetched folder is never mistaken for a done one.
        staging.rename(lib)
    except OSError:
        if not lib.is_dir():  # a concurrent fetch that finished first is as good
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lib


@dataclass(slots=True)
class PulsarStandalone:
    data_dir: Path
    service_url: str
    admin_url: str
    pid: int
    # The broker process when this call started it (None when a running one was found).
    process: subprocess.Popen[bytes] | None = None

    def stop(self, timeout: float = 60.0) -> None:
        """Stops the broker cleanly (SIGTERM runs its shutdown hooks), killing it if it hangs."""
        if self.process is None and not _ours(self.pid, self.data_dir):
            (self.data_dir / "broker.pid").unlink(missing_ok=True)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if not _wait_gone(self.pid, self.process, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            _wait_gone(self.pid, self.process, 10.0)
        (self.data_dir / "broker.pid").unlink(missing_ok=True)


def _wait_gone(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if process is not None:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or the number is someone else's now
        return False
    return True


def _ours(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is the broker of `data_dir` (not a process that reused its number)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here: trust the number
        return _running(pid)
    return str(data_dir / "standalone.conf").encode() in command


def _healthy(admin_url: str) -> bool:
    """Whether the broker serves: its health check writes and reads a message end to end."""
    url = f"{admin_url}/admin/v2/brokers/health"  # http://127.0.0.1:<port>, made here
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class _Ports:
    broker: int
    web: int
    bookie: int

    @classmethod
    def of(cls, data_dir: Path, broker: int, web: int) -> _Ports:
        """The data directory's ports: chosen on its first start (0 = a free one), then kept.

        The bookie registers its address in its data, and clients keep the broker's URL
        across a restart, so a data directory's ports never change.
        """
        path = data_dir / "ports"
        with contextlib.suppress(FileNotFoundError):
            return cls(*map(int, path.read_text().split()))
        ports = cls(broker or _free_port(), web or _free_port(), _free_port())
        path.write_text(f"{ports.broker} {ports.web} {ports.bookie}\n")
        return ports


def _standalone(data_dir: Path, ports: _Ports, pid: int) -> PulsarStandalone:
    return PulsarStandalone(
        data_dir=data_dir,
        service_url=f"pulsar://127.0.0.1:{ports.broker}",
        admin_url=f"http://127.0.0.1:{ports.web}",
        pid=pid,
    )


def _found(data_dir: Path, ports: _Ports) -> PulsarStandalone | None:
    """The broker already running (or starting) in `data_dir`, once it serves; None if none."""
    try:
        pid = int((data_dir / "broker.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not _ours(pid, data_dir):
        return None
    broker = _standalone(data_dir, ports, pid)
    _wait_healthy(broker)
    return broker


def _wait_healthy(broker: PulsarStandalone) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while not _healthy(broker.admin_url):
        exited = broker.process.poll() is not None if broker.process else not _running(broker.pid)
        if exited or time.monotonic() > deadline:
            raise RuntimeError(
                f"the Pulsar broker did not start; see {broker.data_dir / 'broker.log'} and "
                f"{broker.data_dir / 'broker.out'}"
            )
        time.sleep(0.25)


def start_standalone(
    data_dir: Path, *, broker_port: int = 0, web_port: int = 0
) -> PulsarStandalone:
    """Starts (or finds running) the broker in `data_dir`; returns once it serves.

    Ports of 0 pick free ones the first time; a data directory keeps its ports. The broker's
    log is `data_dir/broker.log`.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = _Ports.of(data_dir, broker_port, web_port)
    if (running := _found(data_dir, ports)) is not None:
        return running
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("the standalone Pulsar broker needs Java 17 (java) on PATH")
    lib = fetch_jars()
    conf = data_dir / "standalone.conf"
    conf.write_text(_config(ports))
    log4j = data_dir / "log4j2.properties"
    log4j.write_text(_LOG4J.format(log=data_dir / "broker.log"))
    command = [
        java,
        *_JAVA_MEMORY,
        *_JAVA_OPENS,
        "-Dio.netty.tryReflectionSetAccessible=true",
        f"-Dlog4j.configurationFile={log4j}",
        "-cp",
        f"{lib}/*",
        _MAIN_CLASS,
        "--config",
        str(conf),
        "--metadata-dir",
        str(data_dir / "metadata"),
        "--bookkeeper-dir",
        str(data_dir / "bookkeeper"),
        "--bookkeeper-port",
        str(ports.bookie),
        "-nfw",  # no functions worker
        "-nss",  # no stream storage
    ]
    with (data_dir / "broker.out").open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (data_dir / "broker.pid").write_text(f"{process.pid}\n")
    broker = _standalone(data_dir, ports, process.pid)
    broker.process = process
    try:
        _wait_healthy(broker)
    except BaseException:  # not started, or interrupted: leave no broker behind
        broker.stop(timeout=10)
        raise
    return broker


def main(argv: list[str]) -> None:
    """`fetch` fills the jar cache; `run DATA_DIR` serves until interrupted."""
    if argv[:1] == ["fetch"]:
        print(f"Pulsar {PULSAR_VERSION} broker jars in {fetch_jars()}", flush=True)
        return
    if len(argv) == 2 and argv[0] == "run":
        broker = start_standalone(Path(argv[1]), broker_port=6650, web_port=8080)
        print(f"pulsar listening on {broker.service_url} (admin {broker.admin_url})", flush=True)
        try:
            wait_for_signal()
        finally:
            broker.stop()
        return
    sys.exit("usage: python -m fillpath.infra.pulsar.standalone fetch | run DATA_DIR")


if __name__ == "__main__":
    main(sys.argv[1:])
