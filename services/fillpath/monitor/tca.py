"""Transaction cost analysis: what an execution cost, and why. Pure and vectorised (numpy).

One convention everywhere: **costs in basis points, positive = cost**, for buys and sells
alike. With the side sign s = +1 for a buy and −1 for a sell, the slippage of a price P against
a benchmark B is

    slippage(P, B) = s · (P − B) / B · 10⁴

so buying above the benchmark, or selling below it, is a positive cost.

Benchmarks of a parent order: the decision price (given by the client), the arrival mid (the
mid when the order was accepted), the interval VWAP and TWAP of the market tape over
[arrival, end) — half-open — with and without our own fills, the close, and for each fill the
mid at the time of the fill.

- **Interval VWAP**: Σ q·p / Σ q over the tape's trades with arrival ≤ t < end.
- **Interval TWAP**: the time average of the last trade price over [arrival, end); before the
  window's first trade the price is that trade's.
- **Realised participation**: our filled quantity / the tape's volume in the window (ours
  included).
- **Fees**: commission on every share, plus the taker fee on taker fills, minus the maker rebate
  on maker fills (a midpoint cross pays neither) — or, for a fill that carries its venue's fee,
  that fee; all explicit costs, in currency.
- **Implementation shortfall** (Perold 1988), in currency and in bps of the decision notional
  (order quantity × decision price), each term signed so that positive is a cost:
  delay = s · filled · (arrival − decision); trading = s · Σ q·(fill − arrival);
  opportunity = s · unfilled · (end mid − decision); fees. Their sum is the shortfall.
- **Impact** (Almgren, Thum, Hauptmann & Li 2005): permanent = slippage(post-trade mid, arrival
  mid); temporary = the realised cost (arrival slippage without fees) − permanent / 2.
- **Per fill**: slippage against the mid at the fill; effective spread = 2 · s · (P − mid) / mid
  · 10⁴; spread capture = s · (mid − P) / half the quoted spread (1: bought at the bid,
  0: at the mid, −1: at the ask); markouts at horizons h = slippage(P, mid(t + h)) — positive
  when the price moved against the fill afterwards (adverse selection). The mid after a fill
  comes from the quotes when given, else from the tape's last trade.

`fillpath tca compute FILE.json` reads the format documented in the README ("Transaction cost
analysis") and prints every figure as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fillpath.core.errors import FieldViolation, InvalidArgument

BPS = 1e4
DEFAULT_MARKOUT_HORIZONS = (1.0, 5.0, 30.0, 300.0)


def slippage_bps(side: int, price: Any, benchmark: Any) -> Any:
    """s · (P − B) / B · 10⁴ (vectorised over arrays)."""
    return side * (np.asarray(price) - benchmark) / benchmark * BPS


@dataclass(frozen=True, slots=True, kw_only=True)
class Fees:
    """Per share, in currency."""

    commission: float = 0.0
    taker_fee: float = 0.0
    maker_rebate: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TcaOrder:
    side: int  # +1 buy, −1 sell
    quantity: float
    decision_price: float
    arrival_time: float
    end_time: float
    arrival_bid: float
    arrival_ask: float
    end_mid: float
    post_trade_mid: float
    close_price: float | None = None
    fees: Fees = field(default_factory=Fees)

    @property
    def arrival_mid(self) -> float:
        return (self.arrival_bid + self.arrival_ask) / 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Fills:
    time: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    liquidity: np.ndarray  # str: maker, taker or midpoint (a dark cross: neither)
    venue_fee: np.ndarray | None = None
    """The venue's fee of each fill in currency (negative: a rebate) when known; NaN or None:
    from the order's fee schedule (taker fee or maker rebate)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tape:
    time: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    own: np.ndarray  # bool: one of our fills


@dataclass(frozen=True, slots=True, kw_only=True)
class Quotes:
    time: np.ndarray
    bid: np.ndarray
    ask: np.ndarray


def _window(tape: Tape, start: float, end: float, *, own: bool) -> np.ndarray:
    inside = (tape.time >= start) & (tape.time < end)
    return inside if own else inside & ~tape.own


def interval_vwap(tape: Tape, start: float, end: float, *, own: bool = True) -> float | None:
    mask = _window(tape, start, end, own=own)
    volume = tape.quantity[mask].sum()
    if volume <= 0:
        return None
    return float((tape.quantity[mask] * tape.price[mask]).sum() / volume)


def interval_twap(tape: Tape, start: float, end: float, *, own: bool = True) -> float | None:
    mask = _window(tape, start, end, own=own)
    if not mask.any() or end <= start:
        return None
    times, prices = tape.time[mask], tape.price[mask]
    order = np.argsort(times, kind="stable")
    times, prices = times[order], prices[order]
    # The price holds from each trade to the next; before the first trade, the first's price.
    edges = np.concatenate([[start], times[1:], [end]])
    durations = np.diff(edges)
    return float((prices * durations).sum() / (end - start))


def _mid_at(times: np.ndarray, quotes: Quotes | None, tape: Tape) -> np.ndarray:
    """The mid at or just before each time (quotes), else the last trade price (tape)."""
    if quotes is not None and len(quotes.time):
        i = np.searchsorted(quotes.time, times, side="right") - 1
        i = np.clip(i, 0, len(quotes.time) - 1)
        return np.asarray((quotes.bid[i] + quotes.ask[i]) / 2, dtype=np.float64)
    if not len(tape.time):
        return np.full(np.shape(times), np.nan)  # no market data at all: no mid to mark to
    order = np.argsort(tape.time, kind="stable")
    t, p = tape.time[order], tape.price[order]
    i = np.clip(np.searchsorted(t, times, side="right") - 1, 0, len(t) - 1)
    return np.asarray(p[i], dtype=np.float64)


def order_tca(
    order: TcaOrder,
    fills: Fills,
    tape: Tape,
    quotes: Quotes | None = None,
    *,
    markout_horizons: Sequence[float] = DEFAULT_MARKOUT_HORIZONS,
) -> dict[str, Any]:
    """Every metric of one parent order (see the module docstring), as plain numbers."""
    s = order.side
    filled = float(fills.quantity.sum())
    unfilled = order.quantity - filled
    notional = float((fills.quantity * fills.price).sum())
    average = notional / filled if filled else None
    arrival = order.arrival_mid
    decision_notional = order.quantity * order.decision_price
    per_share = np.select(
        [fills.liquidity == "maker", fills.liquidity == "taker"],
        [-order.fees.maker_rebate, order.fees.taker_fee],
        default=0.0,
    )
    scheduled = per_share * fills.quantity
    known = fills.venue_fee if fills.venue_fee is not None else np.full(len(scheduled), np.nan)
    fees = float(order.fees.commission * filled + np.where(np.isnan(known), scheduled, known).sum())
    delay = s * filled * (arrival - order.decision_price)
    trading = s * float((fills.quantity * (fills.price - arrival)).sum())
    opportunity = s * unfilled * (order.end_mid - order.decision_price)
    total = delay + trading + opportunity + fees
    market_volume = float(
        tape.quantity[_window(tape, order.arrival_time, order.end_time, own=True)].sum()
    )
    permanent = float(slippage_bps(s, order.post_trade_mid, arrival))

    def slip(benchmark: float | None) -> float | None:
        if average is None or benchmark is None:
            return None
        return float(slippage_bps(s, average, benchmark))

    arrival_slippage = slip(arrival)
    benchmarks = {
        "decision_price": order.decision_price,
        "arrival_mid": arrival,
        "vwap": interval_vwap(tape, order.arrival_time, order.end_time, own=True),
        "vwap_excluding_own": interval_vwap(tape, order.arrival_time, order.end_time, own=False),
        "twap": interval_twap(tape, order.arrival_time, order.end_time, own=True),
        "twap_excluding_own": interval_twap(tape, order.arrival_time, order.end_time, own=False),
        "close": order.close_price,
    }
    return {
        "convention": "bps, positive = cost; slippage = s·(P−B)/B·1e4, s = +1 buy, −1 sell",
        "quantity": order.quantity,
        "filled_quantity": filled,
        "fill_rate": filled / order.quantity,
        "average_price": average,
        "fees": fees,
        "benchmarks": benchmarks,
        "slippage_bps": {
            "decision": slip(order.decision_price),
            "arrival": arrival_slippage,
            "arrival_with_fees": None
            if average is None
            else float(slippage_bps(s, average + s * fees / filled, arrival)),
            "vwap": slip(benchmarks["vwap"]),
            "vwap_excluding_own": slip(benchmarks["vwap_excluding_own"]),
            "twap": slip(benchmarks["twap"]),
            "twap_excluding_own": slip(benchmarks["twap_excluding_own"]),
            "close": slip(order.close_price),
        },
        "participation": filled / market_volume if market_volume else None,
        "implementation_shortfall": {
            "currency": {
                "delay": delay,
                "trading": trading,
                "opportunity": opportunity,
                "fees": fees,
                "total": total,
            },
            "bps": {
                "delay": delay / decision_notional * BPS,
                "trading": trading / decision_notional * BPS,
                "opportunity": opportunity / decision_notional * BPS,
                "fees": fees / decision_notional * BPS,
                "total": total / decision_notional * BPS,
            },
        },
        "impact_bps": {
            "permanent": permanent,
            "temporary": None if arrival_slippage is None else arrival_slippage - permanent / 2,
        },
        "fills": fill_tca(order.side, fills, tape, quotes, markout_horizons=markout_horizons),
    }


def fill_tca(
    side: int,
    fills: Fills,
    tape: Tape,
    quotes: Quotes | None = None,
    *,
    markout_horizons: Sequence[float] = DEFAULT_MARKOUT_HORIZONS,
) -> list[dict[str, Any]]:
    """Per fill: slippage vs its mid, effective spread, spread capture, markouts."""
    if not len(fills.price):
        return []
    mid = (fills.bid + fills.ask) / 2
    half_spread = (fills.ask - fills.bid) / 2
    slippage = slippage_bps(side, fills.price, mid)
    effective = 2 * slippage
    with np.errstate(divide="ignore", invalid="ignore"):
        capture = np.where(half_spread > 0, side * (mid - fills.price) / half_spread, np.nan)
    markouts = {
        f"{h:g}s": slippage_bps(side, fills.price, _mid_at(fills.time + h, quotes, tape))
        for h in markout_horizons
    }
    return [
        {
            "time": float(fills.time[i]),
            "quantity": float(fills.quantity[i]),
            "price": float(fills.price[i]),
            "liquidity": str(fills.liquidity[i]),
            "mid": float(mid[i]),
            "slippage_vs_mid_bps": float(slippage[i]),
            "effective_spread_bps": float(effective[i]),
            "spread_capture": None if np.isnan(capture[i]) else float(capture[i]),
            "markouts_bps": {
                k: None if np.isnan(v[i]) else float(v[i]) for k, v in markouts.items()
            },
        }
        for i in range(len(fills.price))
    ]


def distribution(values: Sequence[float], weights: Sequence[float] | None = None) -> dict[str, Any]:
    """A metric's distribution: count, mean (and weighted mean), stdev, percentiles."""
    x = np.asarray(values, dtype=np.float64)
    if not len(x):
        return {"count": 0}
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    p10, p25, p50, p75, p90 = np.percentile(x, [10, 25, 50, 75, 90])
    return {
        "count": len(x),
        "mean": float(x.mean()),
        "weighted_mean": float((x * w).sum() / w.sum()) if w.sum() else None,
        "stdev": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
        "min": float(x.min()),
        "p10": float(p10),
        "p25": float(p25),
        "median": float(p50),
        "p75": float(p75),
        "p90": float(p90),
        "max": float(x.max()),
    }


def aggregate(
    rows: Sequence[Mapping[str, Any]], by: str, metric: str, weight: str | None = None
) -> dict[str, dict[str, Any]]:
    """`metric` of `rows` grouped by the key `by` (venue, algorithm, strategy, account, symbol,
    day), each group's distribution (weighted by `weight`, e.g. notional, when given)."""
    groups: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        value = row.get(metric)
        if value is None:
            continue
        values, weights = groups.setdefault(str(row[by]), ([], []))
        values.append(float(value))
        weights.append(float(row[weight]) if weight else 1.0)
    return {key: distribution(v, w) for key, (v, w) in sorted(groups.items())}


# ---- the file format of `fillpath tca compute` -----------------------------------------------


def _number(
    data: Mapping[str, Any], key: str, path: str, violations: list[FieldViolation]
) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        violations.append(FieldViolation(f"{path}{key}", value, "a number is required"))
        return float("nan")
    try:
        return float(value)
    except ValueError:
        violations.append(FieldViolation(f"{path}{key}", value, "not a number"))
        return float("nan")


def _rows(
    data: Mapping[str, Any], key: str, columns: Sequence[str], violations: list[FieldViolation]
) -> dict[str, np.ndarray]:
    rows = data.get(key, [])
    if not isinstance(rows, list):
        violations.append(FieldViolation(key, rows, "must be a list"))
        rows = []
    out: dict[str, list[float]] = {c: [] for c in columns}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            violations.append(FieldViolation(f"{key}[{i}]", row, "must be a mapping"))
            continue
        for c in columns:
            out[c].append(_number(row, c, f"{key}[{i}].", violations))
    return {c: np.asarray(v, dtype=np.float64) for c, v in out.items()}


def compute_from_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """`fillpath tca compute`: the documented JSON in, every metric out.

    Raises:
        InvalidArgument: every bad field, by path.
    """
    violations: list[FieldViolation] = []
    raw = document.get("order")
    if not isinstance(raw, Mapping):
        raise InvalidArgument.single("order", raw, "must be a mapping")
    side_text = str(raw.get("side", "")).lower()
    if side_text not in ("buy", "sell"):
        violations.append(FieldViolation("order.side", raw.get("side"), "buy or sell"))
    fee_data = raw.get("fees", {}) or {}
    fees = Fees(
        commission=float(fee_data.get("commission", 0)),
        taker_fee=float(fee_data.get("taker_fee", 0)),
        maker_rebate=float(fee_data.get("maker_rebate", 0)),
    )
    numbers = {
        key: _number(raw, key, "order.", violations)
        for key in (
            "quantity", "decision_price", "arrival_time", "end_time", "arrival_bid",
            "arrival_ask", "end_mid", "post_trade_mid",
        )
    }  # fmt: skip
    if numbers["quantity"] <= 0:
        violations.append(FieldViolation("order.quantity", raw.get("quantity"), "must be positive"))
    fill_columns = _rows(document, "fills", ("time", "quantity", "price", "bid", "ask"), violations)
    liquidity = [
        str(f.get("liquidity", "")).lower()
        for f in document.get("fills", [])
        if isinstance(f, Mapping)
    ]
    for i, flag in enumerate(liquidity):
        if flag not in ("maker", "taker", "midpoint"):
            violations.append(
                FieldViolation(f"fills[{i}].liquidity", flag, "maker, taker or midpoint")
            )
    tape_columns = _rows(document, "tape", ("time", "quantity", "price"), violations)
    own = np.asarray(
        [bool(t.get("own", False)) for t in document.get("tape", []) if isinstance(t, Mapping)]
    )
    quotes = None
    if "quotes" in document:
        q = _rows(document, "quotes", ("time", "bid", "ask"), violations)
        order = np.argsort(q["time"], kind="stable")
        quotes = Quotes(time=q["time"][order], bid=q["bid"][order], ask=q["ask"][order])
    horizons = document.get("markout_horizons_seconds", list(DEFAULT_MARKOUT_HORIZONS))
    if violations:
        raise InvalidArgument(violations)
    order_ = TcaOrder(
        side=1 if side_text == "buy" else -1,
        close_price=float(raw["close_price"]) if raw.get("close_price") is not None else None,
        fees=fees,
        **numbers,
    )
    raw_fills = [f for f in document.get("fills", []) if isinstance(f, Mapping)]
    fills = Fills(
        time=fill_columns["time"], quantity=fill_columns["quantity"], price=fill_columns["price"],
        bid=fill_columns["bid"], ask=fill_columns["ask"],
        liquidity=np.asarray(liquidity, dtype=object),
        venue_fee=np.asarray(
            [float(f["fee"]) if f.get("fee") is not None else np.nan for f in raw_fills],
            dtype=np.float64,
        ),
    )  # fmt: skip
    tape = Tape(
        time=tape_columns["time"], quantity=tape_columns["quantity"], price=tape_columns["price"],
        own=own.astype(bool) if len(own) else np.zeros(0, dtype=bool),
    )  # fmt: skip
    return order_tca(order_, fills, tape, quotes, markout_horizons=[float(h) for h in horizons])
