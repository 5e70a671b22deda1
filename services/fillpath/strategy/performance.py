"""Performance tracking: what every choice was predicted to cost, and what it did.

The service hears the parent fills of the orders it chose for (OrderPartiallyFilled,
OrderFilled: the parent's share of each child fill) and keeps them by exec id
(`strategy_fills`, so a redelivered event counts once); when the order ends (filled, canceled,
expired, done for the day, or refused), its realised cost — the implementation shortfall of
its fills against the arrival mid recorded with the choice, in bps, + = worse; none without
fills — goes on its `strategy_selections` row beside the prediction. `performance` reads them
back: per strategy and profile, per model version (champion against challengers), and the
prediction error per day and model (drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg_pool import ConnectionPool

FILLS = ("order_partially_filled", "order_filled")
ENDS = ("order_filled", "order_canceled", "order_expired", "order_done_for_day", "order_rejected")

_FILL = """
WITH chosen AS (SELECT symbol FROM strategy_selections WHERE order_id = %(order_id)s),
     kept AS (INSERT INTO strategy_fills (exec_id, order_id, quantity, price_nanos)
              SELECT %(exec_id)s, %(order_id)s, %(quantity)s, %(price)s FROM chosen
              ON CONFLICT (exec_id) DO NOTHING)
SELECT symbol FROM chosen
"""

_END = """
UPDATE strategy_selections s
SET executed_quantity = coalesce(f.quantity, 0),
    realised_cost_bps = (CASE WHEN s.side = 'BUY' THEN 1 ELSE -1 END)
        * (f.notional / nullif(f.quantity, 0) - s.arrival_mid_nanos) / s.arrival_mid_nanos * 1e4,
    completed_at = %(at)s
FROM (SELECT sum(quantity) AS quantity, sum(quantity * price_nanos::numeric) AS notional
      FROM strategy_fills WHERE order_id = %(order_id)s) f
WHERE s.order_id = %(order_id)s
"""


class Tracker:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def on_fill(self, order_id: str, exec_id: str, quantity: int, price_nanos: int) -> str | None:
        """Keeps a parent fill of an order chosen for; its symbol (None: not one of ours)."""
        with self._pool.connection() as conn:
            row = conn.execute(
                _FILL,
                {"exec_id": exec_id, "order_id": order_id, "quantity": quantity,
                 "price": price_nanos},
            ).fetchone()  # fmt: skip
        return None if row is None else str(row[0])

    def on_end(self, order_id: str, at: datetime) -> None:
        with self._pool.connection() as conn:
            conn.execute(_END, {"order_id": order_id, "at": at})

    def live_orders(self, within: timedelta = timedelta(days=1)) -> list[tuple[str, str]]:
        """(order id, symbol) of the orders chosen for within `within` that have fills and have
        not ended: those being worked."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT s.order_id, s.symbol FROM strategy_selections s"
                " WHERE s.completed_at IS NULL AND s.selected_at > now() - %s"
                " AND EXISTS (SELECT 1 FROM strategy_fills f WHERE f.order_id = s.order_id)"
                " ORDER BY s.selected_at",
                (within,),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def performance(
        self,
        *,
        strategy: str = "",
        profile: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Performance:
        return performance(self._pool, strategy=strategy, profile=profile, since=since, until=until)


# The figures' fields are in the order their queries select them.


@dataclass(frozen=True, slots=True)
class ProfileFigures:
    strategy: str
    algo_profile: str
    orders: int
    mean_cost_bps: float
    stddev_cost_bps: float
    mean_prediction_error_bps: float


@dataclass(frozen=True, slots=True)
class ModelFigures:
    version: str
    orders: int
    mean_cost_bps: float
    mean_prediction_error_bps: float
    mean_abs_prediction_error_bps: float
    promoted: bool


@dataclass(frozen=True, slots=True)
class DriftFigures:
    day: datetime
    model_version: str
    orders: int
    mean_prediction_error_bps: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Performance:
    profiles: list[ProfileFigures]
    models: list[ModelFigures]
    drift: list[DriftFigures]


_WHERE = """
WHERE s.realised_cost_bps IS NOT NULL
  AND (%(strategy)s = '' OR s.strategy = %(strategy)s)
  AND (%(profile)s = '' OR s.algo_profile = %(profile)s)
  AND (%(since)s::timestamptz IS NULL OR s.selected_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR s.selected_at < %(until)s)
"""


def performance(
    pool: ConnectionPool[Any],
    *,
    strategy: str = "",
    profile: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> Performance:
    """The realised figures of the orders chosen for that have ended, within the filters."""
    where = {"strategy": strategy, "profile": profile, "since": since, "until": until}
    with pool.connection() as conn:
        profiles = conn.execute(
            "SELECT s.strategy, s.algo_profile, count(*), avg(s.realised_cost_bps),"
            " coalesce(stddev_samp(s.realised_cost_bps), 0),"
            " coalesce(avg(s.realised_cost_bps - s.predicted_cost_bps)"
            "  FILTER (WHERE s.model_version <> ''), 0)"
            f" FROM strategy_selections s {_WHERE} GROUP BY 1, 2 ORDER BY 1, 2",
            where,
        ).fetchall()
        models = conn.execute(
            "SELECT s.model_version, count(*), avg(s.realised_cost_bps),"
            " avg(s.realised_cost_bps - s.predicted_cost_bps),"
            " avg(abs(s.realised_cost_bps - s.predicted_cost_bps)),"
            " coalesce(bool_or(m.promoted), false)"
            " FROM strategy_selections s"
            " LEFT JOIN strategy_models m ON m.version = s.model_version"
            f" {_WHERE} AND s.model_version <> '' GROUP BY 1 ORDER BY 1",
            where,
        ).fetchall()
        drift = conn.execute(
            "SELECT date_trunc('day', s.selected_at), s.model_version, count(*),"
            " avg(s.realised_cost_bps - s.predicted_cost_bps)"
            f" FROM strategy_selections s {_WHERE} AND s.model_version <> ''"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            where,
        ).fetchall()
    return Performance(
        profiles=[ProfileFigures(*r) for r in profiles],
        models=[ModelFigures(*r) for r in models],
        drift=[DriftFigures(*r) for r in drift],
    )
