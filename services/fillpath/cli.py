"""The `fillpath` command: run the platform, trade from a terminal, check the books, measure.

A composition root: options and ``FILLPATH_*`` variables become `Settings` here, and nowhere
else below.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fillpath.algo.trajectory import ImpactModel, trajectory
from fillpath.bench.algos import run_algos_bench, run_algos_quality
from fillpath.bench.bus import run_bus_bench
from fillpath.bench.calibrate import run_calibration
from fillpath.bench.lab import run_lab_bench
from fillpath.bench.monitor import run_monitor_bench
from fillpath.bench.oms import run_oms_bench
from fillpath.bench.sor import run_sor_bench
from fillpath.bench.sor_quality import run_sor_quality
from fillpath.bench.strategy import models_table, run_quality, run_strategy_bench, run_training
from fillpath.core.errors import FillpathError
from fillpath.demo import run_demo
from fillpath.embedded import start_platform
from fillpath.infra.clock import SystemClock
from fillpath.infra.grpc_server import wait_for_signal
from fillpath.infra.postgres.embedded import start_embedded_postgres
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import EVENT_STORE_MIGRATIONS, migrate
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.settings import (
    BUS_KINDS,
    AlgoSettings,
    LabSettings,
    MonitorSettings,
    OmsSettings,
    RedisSettings,
    Settings,
    SorSettings,
    StrategySettings,
)
from fillpath.market.lab import MarketLab
from fillpath.market.lobster import replay_lobster
from fillpath.market.main import start_lab
from fillpath.monitor.report import write_report
from fillpath.monitor.tca import compute_from_document
from fillpath.oms.cli import console, orders
from fillpath.oms.main import order_codec
from fillpath.oms.projection import OMS_MIGRATIONS, rebuild
from fillpath.oms.verify import verify as verify_streams
from fillpath.strategy.registry import Registry
from fillpath.strategy.service import STRATEGY_MIGRATIONS

F = TypeVar("F", bound=Callable[..., Any])


def _settings(**overrides: Any) -> Settings:
    settings = Settings.from_env(os.environ)
    if overrides.get("data_dir"):
        settings = dataclasses.replace(settings, data_dir=Path(overrides["data_dir"]))
    if overrides.get("config_dir"):
        settings = dataclasses.replace(settings, config_dir=Path(overrides["config_dir"]))
    if overrides.get("pg_dsn"):
        settings = dataclasses.replace(
            settings, postgres=dataclasses.replace(settings.postgres, dsn=overrides["pg_dsn"])
        )
    if overrides.get("redis_url"):
        settings = dataclasses.replace(settings, redis=RedisSettings(url=overrides["redis_url"]))
    if overrides.get("bus") or overrides.get("pulsar_url"):
        bus = settings.bus
        settings = dataclasses.replace(
            settings,
            bus=dataclasses.replace(
                bus,
                kind=overrides.get("bus")
                or ("pulsar" if overrides.get("pulsar_url") else bus.kind),
                pulsar_url=overrides.get("pulsar_url") or bus.pulsar_url,
            ),
        )
    if overrides.get("oms_address"):
        settings = dataclasses.replace(
            settings, oms=dataclasses.replace(settings.oms, address=overrides["oms_address"])
        )
    monitor = settings.monitor
    return dataclasses.replace(
        settings,
        monitor=dataclasses.replace(
            monitor,
            address=overrides.get("monitor_address") or monitor.address,
            http_address=overrides.get("dashboard_address") or monitor.http_address,
        ),
        sor=dataclasses.replace(
            settings.sor, address=overrides.get("sor_address") or settings.sor.address
        ),
        algo=dataclasses.replace(
            settings.algo, address=overrides.get("algo_address") or settings.algo.address
        ),
        strategy=dataclasses.replace(
            settings.strategy,
            address=overrides.get("strategy_address") or settings.strategy.address,
        ),
    )


def _storage_options(command: F) -> F:
    command = click.option(
        "--pg-dsn", help="External Postgres (default: the embedded one in --data-dir)."
    )(command)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data directory of the embedded servers [default: ~/.local/share/fillpath].",
    )(command)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except FillpathError as err:
        raise click.ClickException(str(err)) from err


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fillpath")
def main() -> None:
    """fillpath: execution platform for trading desks."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


main.add_command(orders)


@main.command()
@_storage_options
@click.option("--redis-url", help="External Redis (default: the embedded one in --data-dir).")
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder with instruments.yaml and accounts.yaml [default: the shipped defaults].",
)
@click.option("--oms-address", help=f"OMS listen address [default: {OmsSettings().address}].")
@click.option(
    "--monitor-address",
    help=f"MonitorService listen address [default: {MonitorSettings().address}].",
)
@click.option(
    "--sor-address", help=f"RoutingService listen address [default: {SorSettings().address}]."
)
@click.option(
    "--algo-address", help=f"AlgoService listen address [default: {AlgoSettings().address}]."
)
@click.option(
    "--strategy-address",
    help=f"StrategyService listen address [default: {StrategySettings().address}].",
)
@click.option(
    "--dashboard-address",
    help=f"Where the dashboard is served [default: {MonitorSettings().http_address}].",
)
@click.option(
    "--bus",
    type=click.Choice(BUS_KINDS),
    help="in-process: the services in this process [default]; pulsar: each service a process "
    "of its own, sharing events through Apache Pulsar.",
)
@click.option(
    "--pulsar-url",
    help="External Pulsar (implies --bus pulsar; default: a standalone broker in --data-dir).",
)
def up(**options: Any) -> None:
    """Start the platform on this machine and serve until Ctrl-C."""
    settings = _settings(**options)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with _errors():
        platform = start_platform(settings)
    table = Table(title="fillpath is up", title_justify="left", header_style="bold")
    for column in ("part", "where", "what"):
        table.add_column(column)
    for row in platform.endpoints():
        table.add_row(*row)
    console.print(table)
    console.print(f"data: {settings.data_dir}    stop with Ctrl-C")
    # The line scripts wait for (fillpath.infra.service_process).
    print(f"fillpath listening on {platform.oms_address}", flush=True)
    try:
        wait_for_signal()
    finally:
        console.print("stopping…")
        platform.stop()


def _pg_dsn(settings: Settings) -> str:
    if settings.postgres.dsn:
        return settings.postgres.dsn
    return start_embedded_postgres(settings.data_dir / "postgres").dsn


@main.command()
@_storage_options
def replay(**options: Any) -> None:
    """Rebuild every read model from the events, from position zero."""
    settings = _settings(**options)
    dsn = _pg_dsn(settings)
    migrate(dsn, [EVENT_STORE_MIGRATIONS, OMS_MIGRATIONS])
    pool = open_pool(dsn, 4, name="replay")
    try:
        store = PostgresEventStore(pool, order_codec(), SystemClock())
        with _progress() as progress:
            task = progress.add_task("replaying order streams", total=None)
            streams, events = rebuild(
                pool, store, lambda done, total: progress.update(task, completed=done, total=total)
            )
    finally:
        pool.close()
    console.print(f"rebuilt order_view from {events:,} events in {streams:,} streams")


@main.command()
@_storage_options
def verify(**options: Any) -> None:
    """Replay every stream and check hash chains, versions and order invariants."""
    settings = _settings(**options)
    dsn = _pg_dsn(settings)
    migrate(dsn, [EVENT_STORE_MIGRATIONS])
    pool = open_pool(dsn, 4, name="verify")
    try:
        store = PostgresEventStore(pool, order_codec(), SystemClock())
        with _progress() as progress:
            task = progress.add_task("verifying order streams", total=None)
            report = verify_streams(
                pool,
                store,
                order_codec(),
                lambda done, total: progress.update(task, completed=done, total=total),
            )
    finally:
        pool.close()
    if report.ok:
        console.print(
            f"[green]OK[/]: {report.events:,} events in {report.streams:,} streams: hash chains "
            "intact, versions continuous, every order consistent"
        )
        return
    table = Table(title="Inconsistencies", title_justify="left", header_style="bold red")
    for column in ("stream", "version", "position", "problem"):
        table.add_column(column)
    for item in report.inconsistencies:
        table.add_row(item.stream_id, str(item.version), str(item.position), item.problem)
    console.print(table)
    console.print(
        f"[red]{len(report.inconsistencies)} inconsistencies[/] in {report.events:,} events "
        f"of {report.streams:,} streams"
    )
    sys.exit(1)


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo keeps its data [default: a fresh temporary directory].",
)
def demo(data_dir: Path | None) -> None:
    """A scripted session: start, trade a few orders against simulated venues, show the books."""
    with _errors():
        run_demo(console, data_dir)


@main.command()
@click.option("--address", default=LabSettings().address, show_default=True,
              help="Where to serve the venues (VenueGatewayService).")  # fmt: skip
@click.option("--speed", type=click.FloatRange(min=0.001), default=LabSettings().speed,
              show_default=True, help="Simulated seconds per wall-clock second.")  # fmt: skip
@click.option("--seed", type=int, default=LabSettings().seed, show_default=True)
@click.option("--start-at", type=click.FloatRange(0, 23_400), default=0.0, show_default=True,
              help="Seconds after the open to start the session at.")  # fmt: skip
@click.option("--symbol", "symbols", multiple=True, help="Instruments to simulate [default: all].")
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path),
              help="instruments.yaml and venues.yaml [default: the shipped ones].")  # fmt: skip
def lab(
    address: str,
    speed: float,
    seed: int,
    start_at: float,
    symbols: tuple[str, ...],
    config_dir: Path | None,
) -> None:
    """Run the market lab's venues as a gRPC service until Ctrl-C (point an OMS at it with
    FILLPATH_VENUE_GATEWAY)."""
    settings = Settings(
        config_dir=config_dir,
        lab=LabSettings(address=address, speed=speed, seed=seed, start_at=start_at),
    )
    with _errors(), console.status("building the lab (compiling its kernels the first time)…"):
        runtime = start_lab(settings, symbols=list(symbols) or None)
    try:
        lab_ = runtime.gateway.lab
        host = address.rsplit(":", 1)[0]
        table = Table(title="fillpath lab", title_justify="left", header_style="bold")
        for column in ("", ""):
            table.add_column(column)
        table.add_row("venues (gRPC)", f"{host}:{runtime.port} fillpath.v1.VenueGatewayService")
        table.add_row("session", f"{_session_text(lab_)}, seed {seed}, {speed:g}× real time")
        table.add_row("instruments", ", ".join(lab_.symbols))
        table.add_row("lit venues", ", ".join(v.name for v in lab_.venues if v.kind == "lit"))
        table.add_row("dark pools", ", ".join(v.name for v in lab_.venues if v.kind == "dark"))
        console.print(table)
        wait_for_signal()
    finally:
        runtime.stop()


def _session_text(lab: MarketLab) -> str:
    return f"{lab.config.session_date} from {lab.time_of(lab.now):%H:%M:%S} UTC"


@main.command()
@click.argument("message_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("orderbook_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--symbol", default="LOBSTER", show_default=True, help="Name for the plot.")
@click.option("--tick", default="0.01", show_default=True, help="Tick size, a decimal.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG of the day (price, spread, volume profile) here.")  # fmt: skip
def lobster(
    message_file: Path, orderbook_file: Path, symbol: str, tick: str, plot_path: Path | None
) -> None:
    """Replay a LOBSTER day (message + orderbook files) through the lab's book."""
    with _errors():
        summary = replay_lobster(
            message_file, orderbook_file, symbol=symbol, tick=tick, plot_path=plot_path
        )
    table = Table(title=f"LOBSTER replay of {message_file.name}", title_justify="left")
    table.add_column("")
    table.add_column("figure", justify="right")
    for name, value in summary.items():
        table.add_row(name, value)
    console.print(table)


@main.group()
def tca() -> None:
    """Transaction cost analysis (bps, positive = cost)."""


@tca.command(name="compute")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def tca_compute(file: Path) -> None:
    """Every TCA metric of the order in FILE (JSON; format in the README) as JSON."""
    try:
        document = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise click.ClickException(f"{file}: not JSON: {err}") from err
    if not isinstance(document, dict):
        raise click.ClickException(f"{file}: the top level must be an object")
    with _errors():
        result = compute_from_document(document)
    click.echo(json.dumps(result, indent=2))


@tca.command(name="report")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("tca.html"),
              show_default=True, help="The HTML report; the fills CSV goes beside it.")  # fmt: skip
@click.option("--title", default="TCA report", show_default=True)
def tca_report(files: tuple[Path, ...], out: Path, title: str) -> None:
    """An HTML TCA report (figures and plots) and a CSV of the fills, for the orders in FILES."""
    documents = []
    for file in files:
        try:
            documents.append(json.loads(file.read_text()))
        except json.JSONDecodeError as err:
            raise click.ClickException(f"{file}: not JSON: {err}") from err
    with _errors():
        page, table = write_report(documents, out, title)
    console.print(f"report: {page}\nfills:  {table}")


@main.group()
def algos() -> None:
    """Execution algorithms: the schedules they follow."""


@algos.command(name="calibrate")
@click.option("--symbol", default="ACME", show_default=True, help="The lab instrument.")
@click.option("--seeds", type=click.IntRange(2, 1_000), default=10, show_default=True,
              help="Lab sessions per order size (each also run without the order).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def algos_calibrate(symbol: str, seeds: int, as_json: bool) -> None:
    """Fits the instrument's market impact (Almgren–Chriss ε, η, γ) on the market lab: TWAP
    orders of ¼–2 % of ADV, each against the same session without it; prints the fit and the
    `impact:` entry for instruments.yaml."""
    if symbol not in load_reference_data().instruments:
        raise click.BadParameter(f"{symbol!r} is not in instruments.yaml", param_hint="--symbol")
    run_calibration(console, symbol=symbol, seeds=seeds, as_json=as_json)


@algos.command(name="plan")
@click.option("--algorithm", type=click.Choice(["is", "twap"], case_sensitive=False),
              default="is", show_default=True,
              help="is: implementation shortfall (Almgren–Chriss, risk aversion λ); twap: the "
              "straight line (λ = 0).")  # fmt: skip
@click.option("--shares", "-X", type=float, default=1e6, show_default=True,
              help="X: shares to trade.")  # fmt: skip
@click.option("--horizon", "-T", type=float, default=5.0, show_default=True,
              help="T: the time to trade them in (days in the paper).")  # fmt: skip
@click.option("--periods", "-N", type=int, default=5, show_default=True, help="N: periods.")
@click.option("--sigma", type=float, default=0.95, show_default=True,
              help="σ: volatility, price per √time.")  # fmt: skip
@click.option("--eta", type=float, default=2.5e-6, show_default=True,
              help="η: temporary impact, price per share per time.")  # fmt: skip
@click.option("--gamma", type=float, default=2.5e-7, show_default=True,
              help="γ: permanent impact, price per share.")  # fmt: skip
@click.option("--epsilon", type=float, default=0.0625, show_default=True,
              help="ε: fixed cost per share (half the spread, fees).")  # fmt: skip
@click.option("--risk-aversion", "--lambda", "risk_aversion", type=float, default=1e-6,
              show_default=True, help="λ: weight of variance against expected cost.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON object.")
def algos_plan(
    algorithm: str,
    shares: float,
    horizon: float,
    periods: int,
    sigma: float,
    eta: float,
    gamma: float,
    epsilon: float,
    risk_aversion: float,
    as_json: bool,
) -> None:
    """The schedule an algorithm would follow: holdings and trades per period, and the expected
    cost and variance of the trajectory. Defaults: Almgren & Chriss (2000)'s example."""
    with _errors():
        model = ImpactModel(
            shares=shares, horizon=horizon, periods=periods, sigma=sigma, eta=eta, gamma=gamma,
            epsilon=epsilon, risk_aversion=0.0 if algorithm.lower() == "twap" else risk_aversion,
        )  # fmt: skip
    plan = trajectory(model)
    lam = model.risk_aversion
    figures = {
        "algorithm": algorithm.upper(),
        "model": dataclasses.asdict(model),
        "tau": model.tau,
        "kappa": plan.kappa,
        "half_life": None if plan.kappa == 0 else plan.half_life,
        "periods": [
            {
                "period": k,
                "time": k * model.tau,
                "trade": float(plan.trades[k - 1]) if k else 0.0,
                "holdings": float(plan.holdings[k]),
            }
            for k in range(model.periods + 1)
        ],
        "expected_cost": plan.expected_cost,
        "variance": plan.variance,
        "std_dev": plan.variance**0.5,
        "utility": plan.expected_cost + lam * plan.variance,
    }
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    table = Table(
        title=f"{figures['algorithm']} (λ = {lam:g}): X = {shares:,.0f}, T = {horizon:g}, "
        f"N = {periods}",
        title_justify="left",
        header_style="bold",
    )
    for column in ("period", "time", "trade", "holdings after"):
        table.add_column(column, justify="right")
    for row in figures["periods"]:
        table.add_row(str(row["period"]), f"{row['time']:g}", f"{row['trade']:,.1f}",
                      f"{row['holdings']:,.1f}")  # fmt: skip
    console.print(table)
    half_life = "∞ (a straight line)" if plan.kappa == 0 else f"{plan.half_life:.4g}"
    console.print(
        f"expected cost E = {plan.expected_cost:,.2f}   variance V = {plan.variance:.6g}   "
        f"√V = {figures['std_dev']:,.2f}\nE + λV = {figures['utility']:,.2f}   "
        f"κ = {plan.kappa:.6g}   half-life 1/κ = {half_life}"
    )


@main.group()
def strategy() -> None:
    """Execution strategy: the cost model and its registry."""


@contextmanager
def _registry(settings: Settings) -> Iterator[Registry]:
    dsn = _pg_dsn(settings)
    migrate(dsn, [STRATEGY_MIGRATIONS])
    pool = open_pool(dsn, 1, name="strategy-cli")
    try:
        yield Registry(pool)
    finally:
        pool.close()


@strategy.command(name="train")
@_storage_options
@click.option("--scenarios", type=click.IntRange(5, 100_000), default=200, show_default=True,
              help="Randomised lab scenarios, each run by every candidate.")  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True,
              help="Draws the scenarios and seeds the fit (same seed, same model).")  # fmt: skip
@click.option("--promote", is_flag=True, help="Promote the model once it is stored.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def strategy_train(scenarios: int, seed: int, promote: bool, as_json: bool, **options: Any) -> None:
    """Generate training data on the market lab (every candidate profile in randomised
    scenarios), fit the cost model and store it in the registry with its metrics."""
    settings = _settings(**options)
    with _errors():
        run_training(
            console, count=scenarios, seed=seed, dsn=_pg_dsn(settings), promote=promote,
            as_json=as_json,
        )  # fmt: skip


@strategy.command(name="list")
@_storage_options
def strategy_list(**options: Any) -> None:
    """The models in the registry, newest first, with their training metrics."""
    with _errors(), _registry(_settings(**options)) as registry:
        console.print(models_table(registry.list()))


@strategy.command(name="promote")
@_storage_options
@click.argument("version")
def strategy_promote(version: str, **options: Any) -> None:
    """Make VERSION the model the strategy service ranks with (it loads it within seconds)."""
    with _errors(), _registry(_settings(**options)) as registry:
        info = registry.promote(version)
    console.print(f"promoted {info.version}")


@main.group()
def bench() -> None:
    """Measure speed; figures are reported beside a baseline measured in the same run."""


@bench.command(name="oms")
@click.option("--rate", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="Offered load for the latency run, submits per second.")  # fmt: skip
@click.option("--duration", type=click.FloatRange(1, 3600), default=20.0, show_default=True,
              help="Seconds of each measured run.")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Calls in flight for the throughput run.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_oms(rate: int, duration: float, concurrency: int, as_json: bool) -> None:
    """Submit latency and sustained orders/s through gRPC with durable commits."""
    run_oms_bench(console, rate=rate, duration=duration, concurrency=concurrency, as_json=as_json)


@bench.command(name="bus")
@click.option("--events", type=click.IntRange(1_000, 10**7), default=20_000, show_default=True,
              help="Backlog the relay publishes for the throughput run.")  # fmt: skip
@click.option("--rate", type=click.IntRange(8, 100_000), default=400, show_default=True,
              help="Single-event commits per second for the latency run.")  # fmt: skip
@click.option("--duration", type=click.FloatRange(1, 3600), default=10.0, show_default=True,
              help="Seconds of the latency run.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_bus(events: int, rate: int, duration: float, as_json: bool) -> None:
    """Relay throughput and commit-to-consumer latency, in-process bus vs Pulsar."""
    run_bus_bench(console, events=events, rate=rate, duration=duration, as_json=as_json)


@bench.command(name="lab")
@click.option("--symbol", default="GLBX", show_default=True, help="Instrument to simulate.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--step", type=click.FloatRange(0.01, 3600), default=1.0, show_default=True,
              help="Simulated seconds per driver step.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_lab(symbol: str, seed: int, step: float, as_json: bool) -> None:
    """Book events per second and the wall time of one simulated day in the market lab."""
    run_lab_bench(console, symbol=symbol, seed=seed, step=step, as_json=as_json)


@bench.command(name="monitor")
@click.option("--rate", type=click.IntRange(1, 10_000), default=200, show_default=True,
              help="Fills per second, sustained.")  # fmt: skip
@click.option("--fills", type=click.IntRange(100, 10**6), default=2_000, show_default=True,
              help="Fills measured (as many again warm up first).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_monitor(rate: int, fills: int, as_json: bool) -> None:
    """Time from a fill's commit to its figures readable through MonitorService, p50/p99."""
    run_monitor_bench(console, rate=rate, fills=fills, as_json=as_json)


@bench.command(name="sor")
@click.option("--venues", type=click.IntRange(2, 256), default=24, show_default=True,
              help="Venues in the market (a sixth of them dark pools).")  # fmt: skip
@click.option("--decisions", type=click.IntRange(100, 10**7), default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--rate", type=click.IntRange(1, 10_000), default=1_000, show_default=True,
              help="Route calls per second offered through gRPC.")  # fmt: skip
@click.option("--duration", type=click.FloatRange(0, 600), default=10.0, show_default=True,
              help="Seconds of gRPC load for Route and for the echo; 0: skip it.")  # fmt: skip
@click.option("--quality", is_flag=True,
              help="Instead: routing quality on the market lab, vs a naive router.")  # fmt: skip
@click.option("--orders", type=click.IntRange(10, 2_000), default=200, show_default=True,
              help="With --quality: parent orders over the session.")  # fmt: skip
@click.option("--symbol", default="ACME", show_default=True, help="With --quality: the instrument.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_sor(
    venues: int, decisions: int, seed: int, rate: int, duration: float, quality: bool,
    orders: int, symbol: str, as_json: bool,
) -> None:  # fmt: skip
    """Routing decision time: in the kernel (beside the pure-Python reference) and through
    gRPC Route (beside a bare gRPC echo), p50/p99. With --quality: the all-in cost of the
    router's executions on the market lab, beside a naive router's and with the dark leakage
    guard off, measured by the TCA library."""
    if quality:
        run_sor_quality(console, symbol=symbol, orders=orders, seed=seed, as_json=as_json)
        return
    run_sor_bench(
        console, venues=venues, decisions=decisions, seed=seed, rate=rate, duration=duration,
        as_json=as_json,
    )  # fmt: skip


@bench.command(name="algos")
@click.option("--steps", type=click.IntRange(100, 10**7), default=20_000, show_default=True,
              help="Decisions timed per algorithm.")  # fmt: skip
@click.option("--quality", is_flag=True,
              help="Instead: execution quality on the market lab.")  # fmt: skip
@click.option("--seeds", type=click.IntRange(2, 1_000), default=50, show_default=True,
              help="With --quality: full-day VWAP sessions.")  # fmt: skip
@click.option("--frontier-seeds", type=click.IntRange(2, 1_000), default=50, show_default=True,
              help="With --quality: sessions per risk aversion (and TWAP).")  # fmt: skip
@click.option("--pov-seeds", type=click.IntRange(1, 1_000), default=5, show_default=True,
              help="With --quality: POV sessions.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_algos(
    steps: int, quality: bool, seeds: int, frontier_seeds: int, pov_seeds: int, as_json: bool
) -> None:
    """Next-slice decision time of every algorithm, in process, beside an empty call and the
    sizing kernel alone. With --quality: executions on the market lab — VWAP slippage over
    many seeds, POV participation, TWAP's distance from its line, and implementation
    shortfall's efficient frontier against TWAP."""
    if quality:
        run_algos_quality(
            console, seeds=seeds, frontier_seeds=frontier_seeds, pov_seeds=pov_seeds,
            as_json=as_json,
        )  # fmt: skip
        return
    run_algos_bench(console, steps=steps, as_json=as_json)


@bench.command(name="strategy")
@_storage_options
@click.option("--quality", is_flag=True,
              help="Instead: the selection's cost on held-out lab scenarios.")  # fmt: skip
@click.option("--scenarios", type=click.IntRange(5, 100_000), default=60, show_default=True,
              help="With --quality: held-out scenarios.")  # fmt: skip
@click.option("--seed", type=int, default=2, show_default=True,
              help="With --quality: draws the held-out scenarios.")  # fmt: skip
@click.option("--version", help="The model to judge or serve [default: the promoted one].")
@click.option("--rate", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="SelectStrategy calls per second offered.")  # fmt: skip
@click.option("--duration", type=click.FloatRange(1, 3_600), default=20.0, show_default=True,
              help="Seconds of load.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench_strategy(
    quality: bool, scenarios: int, seed: int, version: str | None, rate: int, duration: float,
    as_json: bool, **options: Any,
) -> None:  # fmt: skip
    """SelectStrategy latency through gRPC (every call a choice recorded in Postgres), beside a
    bare gRPC echo, with the registry's model loaded. With --quality: on held-out lab
    scenarios, the mean cost of the learned selection, of the rules alone and of the best
    single profile, and how often each was the cheapest candidate."""
    with _errors(), _registry(_settings(**options)) as registry:
        chosen = version or registry.promoted_version()
        if chosen is None:
            raise click.UsageError("no model promoted: run `fillpath strategy train --promote`")
        model = registry.load(chosen)
    if quality:
        run_quality(console, count=scenarios, seed=seed, model=model, as_json=as_json)
        return
    run_strategy_bench(console, model=model, rate=rate, duration=duration, as_json=as_json)


if __name__ == "__main__":
    main()
