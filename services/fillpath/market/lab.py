"""The market lab: a simulated session of one or more instruments across lit venues and dark
pools, advanced on a simulated clock, that our orders trade in.

`MarketLab` drives one numba engine per instrument (engine.py) in steps of simulated time. What
the engines write — quotes, prints and the reports of our orders — is delivered after each
venue's latency: market data after its market-data latency, our reports after the order-entry
latency (the way back), and our orders reach a venue after it. The same seed gives the same
session, byte for byte (`digest`).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.lib.recfunctions import repack_fields

from fillpath.core.commands import ApplyExecutionReport
from fillpath.core.enums import ExecType, LiquidityFlag, OrderType, Side
from fillpath.core.errors import FieldViolation, InvalidArgument
from fillpath.core.instruments import Instrument
from fillpath.core.price import Price
from fillpath.core.venues import VenueOrder
from fillpath.market import engine as eng
from fillpath.market import rng
from fillpath.market.config import (
    IMPACT_TAUS,
    InstrumentModel,
    LabConfig,
    LabParameters,
    VenueConfig,
    cumulative_shares,
    instrument_model,
    profile_arrays,
    propagator_weights,
)
from fillpath.market.layout import (
    ACT_CANCEL,
    ACT_NEW,
    ACT_REPLACE,
    ACTION,
    BUY,
    NO_LEVEL,
    OUT,
    OUT_ACK,
    OUT_CANCEL_REJECTED,
    OUT_CANCELED,
    OUT_EXPIRED,
    OUT_FILL,
    OUT_QUOTE,
    OUT_REJECTED,
    OUT_REPLACE_REJECTED,
    OUT_REPLACED,
    OUT_TRADE,
    REASONS,
    SELL,
)

_EXEC_TYPES = {
    OUT_ACK: ExecType.NEW,
    OUT_FILL: ExecType.TRADE,
    OUT_CANCELED: ExecType.CANCELED,
    OUT_REJECTED: ExecType.REJECTED,
    OUT_REPLACED: ExecType.REPLACED,
    OUT_CANCEL_REJECTED: ExecType.CANCEL_REJECTED,
    OUT_REPLACE_REJECTED: ExecType.REPLACE_REJECTED,
    OUT_EXPIRED: ExecType.EXPIRED,
}
_MARKET_DATA = (OUT_QUOTE, OUT_TRADE)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketData:
    """Market data released in a step for one instrument: OUT records of kind quote or trade,
    with the time each reached us (seconds since the open)."""

    symbol: str
    records: np.ndarray
    received: np.ndarray


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    market_data: tuple[MarketData, ...]
    reports: tuple[ApplyExecutionReport, ...]


@dataclass(slots=True)
class _Instrument:
    model: InstrumentModel
    engine: eng.Engine
    pending: list[np.ndarray] = field(default_factory=list)  # 0-d ACTION arrays
    carry: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=OUT))
    carry_received: np.ndarray = field(default_factory=lambda: np.zeros(0))
    orders: list[str] = field(default_factory=list)  # order id by handle
    closed: bool = False


class MarketLab:
    """A simulated session. Not thread-safe: one driver calls it (see gateway.py)."""

    def __init__(
        self,
        config: LabConfig,
        instruments: Mapping[str, Instrument],
        params: Mapping[str, LabParameters] | None = None,
        *,
        record: bool = False,
    ) -> None:
        self.config = config
        self.venues: tuple[VenueConfig, ...] = config.venues
        self._venue_index = {v.name: i for i, v in enumerate(self.venues)}
        self._lit = len(config.lit)
        ends, intensity = profile_arrays(config)
        weights = propagator_weights()
        self._instruments: dict[str, _Instrument] = {}
        for symbol, instrument in sorted(instruments.items()):
            model = instrument_model(
                instrument, (params or {}).get(symbol, LabParameters()), config
            )
            engine = eng.new_engine(
                fp=model.fp,
                # Per symbol, so one instrument's session does not depend on which others run.
                seed_states=rng.seeded_streams(
                    config.seed * 1_000_003 + zlib.crc32(symbol.encode()), eng.STREAMS
                ),
                lit_share=cumulative_shares(config.lit),
                dark_share=cumulative_shares(config.dark),
                dark_min=np.asarray([v.min_quantity for v in config.dark], dtype=np.int64),
                dark_toxicity=np.asarray([v.toxicity for v in config.dark]),
                bucket_end=ends,
                intensity=intensity,
                imp_tau=np.asarray(IMPACT_TAUS),
                imp_weight=weights,
                levels=config.levels,
            )
            self._instruments[symbol] = _Instrument(model=model, engine=engine)
        self._entry_latency = np.asarray([v.order_entry_latency for v in self.venues])
        self._data_latency = np.asarray([v.market_data_latency for v in self.venues])
        self._orders: dict[str, tuple[str, int, int]] = {}  # id → symbol, handle, venue
        self._exec_seq = 0
        self._now = 0.0
        self._record = record
        self._log: list[tuple[str, np.ndarray]] = []

    # ---- time -----------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Seconds since the open."""
        return self._now

    def time_of(self, seconds: float) -> datetime:
        """The UTC time `seconds` after the open."""
        return self.config.open_utc + timedelta(seconds=seconds)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._instruments)

    def model(self, symbol: str) -> InstrumentModel:
        return self._instruments[symbol].model

    def engine(self, symbol: str) -> eng.Engine:
        """The instrument's engine, for inspection (books, counters)."""
        return self._instruments[symbol].engine

    # ---- our orders -------------------------------------------------------------------------

    def submit(self, order: VenueOrder) -> bool:
        """Sends a new order; it reaches the venue after the venue's order-entry latency.

        Returns False (and does nothing) when the client order id was sent before: the OMS
        re-sends what it is unsure about after a restart, and a venue must not take it twice.

        Raises:
            InvalidArgument: unknown symbol or venue, or a price off the tick grid.
        """
        if order.order_id in self._orders:
            return False
        item, venue = self._check(order.symbol, order.venue)
        violations = []
        if order.quantity <= 0:
            violations.append(FieldViolation("quantity", order.quantity, "must be positive"))
        level = self._level(item, order.order_type, order.limit_price, violations)
        if violations:
            raise InvalidArgument(violations)
        handle = len(item.orders)
        item.orders.append(order.order_id)
        self._orders[order.order_id] = (order.symbol, handle, venue)
        self._grow(item, handle)
        self._queue(
            item,
            kind=ACT_NEW,
            venue=venue,
            handle=handle,
            side=BUY if order.side is Side.BUY else SELL,
            qty=order.quantity,
            level=level,
            tif=int(order.time_in_force),
            post_only=int(order.post_only),
            min_qty=order.min_quantity,
        )
        return True

    def cancel(self, order_id: str) -> None:
        item, handle, venue = self._known(order_id)
        self._queue(item, kind=ACT_CANCEL, venue=venue, handle=handle)

    def replace(self, order_id: str, quantity: int, limit_price: Price | None) -> None:
        """Cancel/replace to a new total quantity and limit (None: a market order's)."""
        item, handle, venue = self._known(order_id)
        violations: list[FieldViolation] = []
        order_type = OrderType.MARKET if limit_price is None else OrderType.LIMIT
        level = self._level(item, order_type, limit_price, violations)
        if violations:
            raise InvalidArgument(violations)
        self._queue(item, kind=ACT_REPLACE, venue=venue, handle=handle, qty=quantity, level=level)

    # ---- the clock --------------------------------------------------------------------------

    def advance(self, until: float) -> Step:
        """Runs every instrument to `until` (seconds since the open) and returns what reached
        us by then."""
        if until < self._now:
            raise ValueError(f"the lab is at {self._now}s; cannot go back to {until}s")
        market_data: list[MarketData] = []
        reports: list[tuple[float, int, ApplyExecutionReport]] = []
        for symbol, item in self._instruments.items():
            records = self._run(symbol, item, until)
            received = records["t"] + np.where(
                np.isin(records["kind"], _MARKET_DATA),
                self._data_latency[records["venue"]],
                self._entry_latency[records["venue"]],
            )
            records = np.concatenate([item.carry, records])
            received = np.concatenate([item.carry_received, received])
            due = received <= until
            item.carry, item.carry_received = records[~due], received[~due]
            records, received = records[due], received[due]
            order = np.argsort(received, kind="stable")
            records, received = records[order], received[order]
            is_data = np.isin(records["kind"], _MARKET_DATA)
            if is_data.any():
                market_data.append(
                    MarketData(symbol=symbol, records=records[is_data], received=received[is_data])
                )
            for r, at in zip(records[~is_data], received[~is_data], strict=True):
                reports.append((float(at), len(reports), self._report(symbol, item, r)))
        self._now = until
        reports.sort(key=lambda x: (x[0], x[1]))
        return Step(market_data=tuple(market_data), reports=tuple(r for _, _, r in reports))

    def digest(self) -> str:
        """SHA-256 of the event log so far (needs `record=True`), over the packed records (the
        aligned layout's padding bytes are not part of the log)."""
        h = hashlib.sha256()
        for symbol, records in self._log:
            h.update(symbol.encode())
            h.update(repack_fields(records, align=False).tobytes())
        return h.hexdigest()

    def event_log(self, symbol: str) -> np.ndarray:
        """Every record the engine of `symbol` wrote, in order (needs `record=True`)."""
        chunks = [r for s, r in self._log if s == symbol]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=OUT)

    # ---- internals --------------------------------------------------------------------------

    def _run(self, symbol: str, item: _Instrument, until: float) -> np.ndarray:
        e = item.engine
        item.pending.sort(key=lambda a: float(a["t"]))
        due = [a for a in item.pending if a["t"] <= until]
        item.pending = [a for a in item.pending if a["t"] > until]
        actions = np.array(due, dtype=ACTION) if due else np.zeros(0, dtype=ACTION)
        chunks = []
        day_end = self.config.session_seconds
        while True:
            e.ctr[eng.C_ACTION] = 0
            done = eng.run(e, min(until, day_end), actions)
            actions = actions[e.ctr[eng.C_ACTION] :]
            if done and until >= day_end and not item.closed:
                eng.expire_all(e)
                item.closed = True
            chunks.append(e.out[: e.ctr[eng.C_OUT]].copy())
            e.ctr[eng.C_OUT] = 0
            if done:
                break
        if until > day_end:
            # After the close nothing trades: orders that arrive now are refused.
            e.st[eng.S_T] = until
            if len(actions):
                e.ctr[eng.C_ACTION] = 0
                eng.run(e, until, actions)
                chunks.append(e.out[: e.ctr[eng.C_OUT]].copy())
                e.ctr[eng.C_OUT] = 0
        records = np.concatenate(chunks)
        if self._record and len(records):
            self._log.append((symbol, records))
        return records

    def _report(self, symbol: str, item: _Instrument, r: np.void) -> ApplyExecutionReport:
        venue = self.venues[int(r["venue"])]
        handle = int(r["handle"])
        kind = int(r["kind"])
        self._exec_seq += 1
        exec_type = _EXEC_TYPES[kind]
        trade = kind == OUT_FILL
        qty = int(r["qty"])
        return ApplyExecutionReport(
            order_id=item.orders[handle],
            exec_id=f"{venue.name}-{symbol}-{self._exec_seq}",
            exec_type=exec_type,
            venue=venue.name,
            venue_order_id=f"{venue.name}:{symbol}:{handle}",
            last_quantity=qty if trade else 0,
            last_price=Price(int(r["price"])) if trade else None,
            liquidity=LiquidityFlag(int(r["liquidity"])) if trade else None,
            fee_nanos=venue.fee_nanos(int(r["liquidity"]), qty) if trade else 0,
            quantity=qty if kind == OUT_REPLACED else 0,
            limit_price=Price(int(r["price"]))
            if kind == OUT_REPLACED and int(r["price"])
            else None,
            text=REASONS.get(int(r["qty2"]), "") if kind != OUT_FILL else "",
            transact_time=self.time_of(float(r["t"])),
        )

    def _check(self, symbol: str, venue: str) -> tuple[_Instrument, int]:
        violations = []
        item = self._instruments.get(symbol)
        if item is None:
            violations.append(FieldViolation("symbol", symbol, "not traded in the lab"))
        index = self._venue_index.get(venue)
        if index is None:
            violations.append(
                FieldViolation("venue", venue, f"one of {', '.join(self._venue_index)}")
            )
        if violations:
            raise InvalidArgument(violations)
        assert item is not None
        assert index is not None
        return item, index

    def _known(self, order_id: str) -> tuple[_Instrument, int, int]:
        if order_id not in self._orders:
            raise InvalidArgument.single("order_id", order_id, "unknown order")
        symbol, handle, venue = self._orders[order_id]
        return self._instruments[symbol], handle, venue

    def _level(
        self,
        item: _Instrument,
        order_type: OrderType,
        limit: Price | None,
        violations: list[FieldViolation],
    ) -> int:
        if order_type is OrderType.MARKET:
            return NO_LEVEL
        if limit is None or limit.nanos <= 0 or limit.nanos % item.model.tick_nanos:
            violations.append(
                FieldViolation(
                    "limit_price", None if limit is None else str(limit), "a positive tick price"
                )
            )
            return NO_LEVEL
        return item.model.level_of(limit.nanos)

    def _queue(self, item: _Instrument, *, venue: int, **fields: int) -> None:
        action = np.zeros((), dtype=ACTION)
        action["t"] = self._now + self._entry_latency[venue]
        action["venue"] = venue
        for key, value in fields.items():
            action[key] = value
        item.pending.append(action)

    @staticmethod
    def _grow(item: _Instrument, handle: int) -> None:
        ours = item.engine.ours
        if handle < len(ours):
            return
        bigger = np.zeros(len(ours) * 2, dtype=ours.dtype)
        bigger[: len(ours)] = ours
        item.engine = item.engine._replace(ours=bigger)


def lab_for(
    config: LabConfig,
    instruments: Mapping[str, Instrument],
    params: Mapping[str, LabParameters],
    symbols: Sequence[str] | None = None,
    *,
    record: bool = False,
) -> MarketLab:
    """A lab trading `symbols` (all instruments when None)."""
    chosen = {s: instruments[s] for s in (symbols or instruments)}
    return MarketLab(config, chosen, params, record=record)
