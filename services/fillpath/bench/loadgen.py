"""Load for the benchmarks, from ghz (a gRPC load tool written in Go).

The load generator must not be what is measured: on this 2-core machine a Python client adds
~28 ms to the p99 of a bare echo at 500 calls/s, ghz about 3 ms. ghz is built once from the Go
module proxy, at a pinned version, into a cache outside the checkout, and fed the services'
descriptors as a protoset (so it needs no .proto files and no reflection).

At a fixed rate ghz keeps up to `workers` calls in flight and counts latency from each call's
start; with far more workers than rate × latency needs, a slow server cannot hold back the
schedule, so the figures are not bent by coordinated omission (`rate_achieved` says if it was).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from rich.table import Table

from fillpath.bench.cpu import tree_cpu_seconds
from fillpath.bench.stats import Samples
from fillpath.infra.cache import cache_dir

GHZ_MODULE = "github.com/bojand/ghz/cmd/ghz"
ECHO = json.dumps({"payload": "Zmlsb3BhdGg="})
"""A request of the bare echo (fillpath.bench.echo), the baseline of every gRPC benchmark."""
GHZ_VERSION = "v0.121.0"
_CLOSED_BY_GHZ = "use of closed network connection"


def _cache() -> Path:
    return cache_dir() / "tools"


def ghz_binary() -> Path:
    """The pinned ghz, built with `go install` on first use."""
    target = _cache() / f"ghz-{GHZ_VERSION}"
    binary = target / "ghz"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("fillpath bench needs Go (1.22+) on PATH to build its load generator")
    target.mkdir(parents=True, exist_ok=True)
    gopath = _cache() / "go"
    subprocess.run(
        [go, "install", f"{GHZ_MODULE}@{GHZ_VERSION}"],
        env={
            **os.environ,
            "GOBIN": str(target),
            "GOPATH": str(gopath),
            "GOMODCACHE": str(gopath / "pkg" / "mod"),
            "GOFLAGS": "-modcacherw",
        },
        check=True,
        capture_output=True,
    )
    return binary


def _protoset(files: list[FileDescriptor]) -> descriptor_pb2.FileDescriptorSet:
    """The files and everything they import, dependencies first."""
    ordered: list[FileDescriptor] = []

    def visit(file: FileDescriptor) -> None:
        if file in ordered:
            return
        for dependency in file.dependencies:
            visit(dependency)
        ordered.append(file)

    for file in files:
        visit(file)
    out = descriptor_pb2.FileDescriptorSet()
    for file in ordered:
        file.CopyToProto(out.file.add())
    return out


@contextmanager
def protoset_file(files: list[FileDescriptor]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fillpath-protoset-") as folder:
        path = Path(folder) / "services.protoset"
        path.write_bytes(_protoset(files).SerializeToString())
        yield path


@dataclass(frozen=True, slots=True)
class LoadResult:
    samples: Samples
    rate_achieved: float
    calls: int


def run_ghz(
    protoset: Path,
    address: str,
    method: str,
    data: str,
    *,
    rate: int | None = None,
    calls: int | None = None,
    duration: float | None = None,
    workers: int = 64,
    connections: int = 16,
) -> LoadResult:
    """Calls `method` (``package.Service.Method``) with JSON `data` (ghz templates allowed).

    With `rate`, at that many calls per second (`calls` in all); without, as fast as `workers`
    calls in flight allow, for `duration` seconds.
    """
    command = [
        str(ghz_binary()), "--insecure", "--protoset", str(protoset), "--call", method,
        "--data", data, "--concurrency", str(workers), "--connections", str(connections),
        "--format", "json",
    ]  # fmt: skip
    if rate is not None:
        command += ["--rps", str(rate), "--total", str(calls or rate)]
    else:
        command += ["--duration", f"{duration or 10}s"]
    finished = subprocess.run([*command, address], capture_output=True, text=True, check=False)
    if not finished.stdout.strip():
        raise RuntimeError(f"ghz failed: {finished.stderr.strip()[:500]}")
    report = json.loads(finished.stdout)
    samples = Samples()
    for detail in report.get("details") or []:
        error = detail.get("error")
        if error and _CLOSED_BY_GHZ in error:
            continue  # a timed run ends by closing its connections under the calls in flight
        if error:
            samples.fail()
        else:
            samples.add(detail["latency"] / 1e9)
    return LoadResult(samples=samples, rate_achieved=report["rps"], calls=report["count"])


@dataclass(frozen=True, slots=True)
class Target:
    """A server under load: its name in the figures, pid, address, method and JSON request."""

    name: str
    pid: int
    address: str
    method: str
    data: str


def against_echo(
    protoset: Path,
    targets: list[Target],
    *,
    rate: int,
    duration: float,
    postgres_pid: int,
    status: Callable[[str], AbstractContextManager[object]],
) -> dict[str, dict[str, float]]:
    """Each target (the bare echo among them) at `rate` calls/s for `duration` s after a
    warm-up of a second's calls: latency, the rate achieved, and the CPU its process tree and
    Postgres spent per call."""
    results: dict[str, dict[str, float]] = {}
    calls = int(rate * duration)
    for t in targets:
        with status(f"{t.name}: warming up, then {rate}/s for {duration:g}s…"):
            run_ghz(protoset, t.address, t.method, t.data, rate=rate, calls=min(calls, rate))
            cpu = tree_cpu_seconds(t.pid), tree_cpu_seconds(postgres_pid)
            load = run_ghz(protoset, t.address, t.method, t.data, rate=rate, calls=calls)
            used = tree_cpu_seconds(t.pid) - cpu[0], tree_cpu_seconds(postgres_pid) - cpu[1]
        results[t.name] = {
            "rate_per_s": rate,
            "rate_achieved_per_s": round(load.rate_achieved, 1),
            **load.samples.summary_ms(),
            "server_cpu_ms_per_call": 1000 * used[0] / load.calls,
            "postgres_cpu_ms_per_call": 1000 * used[1] / load.calls,
        }
    return results


def against_echo_table(title: str, results: dict[str, Any], name: str, label: str) -> Table:
    """The figures of `against_echo` for the echo and the target `name` (shown as `label`),
    with their ratios (`results["ratio_p50"]`, `["ratio_p99"]`)."""
    table = Table(title=title, title_justify="left", header_style="bold")
    columns = ("", "p50 ms", "p99 ms", "max ms", "calls", "errors", "achieved /s",
               "server CPU ms/call", "Postgres CPU ms/call")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if not column else "right")
    for row_label, key in (("bare gRPC echo", "echo"), (label, name)):
        f = results[key]
        table.add_row(row_label, f"{f['p50_ms']:.2f}", f"{f['p99_ms']:.2f}", f"{f['max_ms']:.2f}",
                      f"{f['count']:,}", str(f["errors"]), f"{f['rate_achieved_per_s']:,.0f}",
                      f"{f['server_cpu_ms_per_call']:.2f}",
                      f"{f['postgres_cpu_ms_per_call']:.2f}")  # fmt: skip
    table.add_row(f"ratio {label} / echo", f"{results['ratio_p50']:.2f}×",
                  f"{results['ratio_p99']:.2f}×", *[""] * (len(columns) - 3))  # fmt: skip
    return table
