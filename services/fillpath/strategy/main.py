"""Composition root of the strategy service: settings in, StrategyService out.

`python -m fillpath.strategy.main` runs it on its own, subscribed to Pulsar (the OMS's order
events, the market data); the embedded platform calls `start_strategy` with its in-process bus.
On start it loads the policy from executionstrategies.yaml (checked against the AlgoProfiles of
algoprofiles.yaml in the same folder), logs every rule that can never match or is shadowed,
loads the promoted cost model from the registry (and again whenever another is promoted: it
looks every `model_poll_interval` seconds), then prints one line,
``fillpath-strategy listening on <host:port>``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from fillpath.core.events import EVENT_TYPES
from fillpath.core.instruments import Instrument
from fillpath.core.profiles import AlgoProfile
from fillpath.infra.bus import Bus
from fillpath.infra.clock import SystemClock
from fillpath.infra.codec import EventCodec
from fillpath.infra.grpc_server import RunningServer, create_server
from fillpath.infra.postgres.event_store import PostgresEventStore
from fillpath.infra.postgres.pool import open_pool
from fillpath.infra.postgres.schema import EVENT_STORE_MIGRATIONS, migrate
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.resources import load_algo_profiles, load_resources
from fillpath.infra.service_main import serve_on_pulsar
from fillpath.infra.settings import Settings
from fillpath.strategy.choice import Chooser
from fillpath.strategy.performance import Tracker
from fillpath.strategy.registry import Registry, refresh_model
from fillpath.strategy.rules import Finding, Policy, check, policy_of
from fillpath.strategy.service import STRATEGY_MIGRATIONS, Strategies
from fillpath.strategy.servicer import StrategyServicer

log = logging.getLogger("fillpath.strategy")


def load_policy(
    folder: Path | None,
    profiles: Mapping[str, AlgoProfile],
    instruments: Mapping[str, Instrument],
    accounts: Mapping[str, Any] | None = None,
) -> tuple[Policy, list[Finding]]:
    """The policy of `folder`'s executionstrategies.yaml (None: the shipped defaults) and what
    loading found wrong with its rules.

    Raises:
        InvalidArgument: the file breaks the CRD, or a rule names a missing profile or an
            override outside its bounds.
    """
    found = load_resources(
        folder / "executionstrategies.yaml" if folder else None,
        "ExecutionStrategy",
        default="executionstrategies.yaml",
    )
    policy = policy_of(found, profiles)
    findings = check(
        policy,
        symbols=list(instruments),
        instrument_classes={i.asset_class for i in instruments.values()},
        accounts=list(accounts or ()),
    )
    return policy, findings


@dataclass(slots=True)
class StrategyRuntime:
    pool: ConnectionPool[Any]
    strategies: Strategies
    registry: Registry
    tracker: Tracker
    server: RunningServer
    stopped: threading.Event
    poller: threading.Thread | None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def refresh_model(self) -> None:
        """Loads the promoted model if it is not the one in use (none promoted: the rules
        alone)."""
        refresh_model(self.strategies, self.registry)

    def stop(self, grace: float = 2.0) -> None:
        self.stopped.set()
        if self.poller is not None:
            self.poller.join(timeout=10)
        self.server.stop(grace)
        self.pool.close()


def start_strategy(
    settings: Settings,
    pg_dsn: str,
    bus: Bus,
    *,
    now: Callable[[], datetime] | None = None,
) -> StrategyRuntime:
    """Migrates, loads the policy, subscribes to `bus` and serves StrategyService, choosing on
    `now`'s clock (the wall clock by default; the market lab's in the demo)."""
    migrate(pg_dsn, [EVENT_STORE_MIGRATIONS, STRATEGY_MIGRATIONS])
    reference = load_reference_data(settings.config_dir)
    profiles = load_algo_profiles(settings.config_dir)
    policy, findings = load_policy(
        settings.config_dir, profiles, reference.instruments, reference.accounts
    )
    for finding in findings:
        log.warning("rule %s %s", finding.rule, finding.problem)
    pool = open_pool(pg_dsn, 4, name="strategy")
    store = PostgresEventStore(pool, EventCodec(EVENT_TYPES), SystemClock())
    chooser = Chooser(policy, profiles, reference.instruments)
    tracker = Tracker(pool)
    strategies = Strategies(store, chooser, now or SystemClock().now, tracker)
    registry = Registry(pool)
    refresh_model(strategies, registry)
    strategies.recover(tracker.live_orders())
    strategies.subscribe(bus)
    server = create_server(
        settings.strategy.address, [StrategyServicer(strategies, registry, tracker).binding()]
    )
    server.server.start()
    stopped = threading.Event()
    poller = None
    interval = settings.strategy.model_poll_interval
    if interval > 0:

        def poll() -> None:
            while not stopped.wait(interval):
                try:
                    refresh_model(strategies, registry)
                except Exception:
                    log.exception("looking for a newly promoted cost model failed")

        poller = threading.Thread(target=poll, name="strategy-models", daemon=True)
        poller.start()
    return StrategyRuntime(
        pool=pool, strategies=strategies, registry=registry, tracker=tracker, server=server,
        stopped=stopped,
        poller=poller,
    )  # fmt: skip


def main() -> None:
    def start(settings: Settings, bus: Bus) -> tuple[StrategyRuntime, str]:
        runtime = start_strategy(settings, settings.postgres.dsn, bus)
        return runtime, runtime.address

    serve_on_pulsar("fillpath-strategy", start)


if __name__ == "__main__":
    main()
