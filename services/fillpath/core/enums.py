"""Enumerations of the order domain.

Each carries the numbers of its protobuf twin in protos/fillpath/v1/common.proto (the proto name
is the prefix plus the member name, e.g. ``SIDE_BUY``); tests/unit/test_enums.py holds them
together, so converting is `Side(proto_value)` with no table.
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2
    SELL_SHORT = 3

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the sign of cost formulas."""
        return 1 if self is Side.BUY else -1


class OrderType(IntEnum):
    MARKET = 1
    LIMIT = 2
    STOP = 3
    STOP_LIMIT = 4

    @property
    def needs_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def needs_stop_price(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)


class TimeInForce(IntEnum):
    DAY = 1
    GTC = 2
    IOC = 3
    FOK = 4
    GTD = 5


class OrderStatus(IntEnum):
    PENDING_NEW = 1
    NEW = 2
    PARTIALLY_FILLED = 3
    FILLED = 4
    PENDING_CANCEL = 5
    CANCELED = 6
    PENDING_REPLACE = 7
    REJECTED = 8
    EXPIRED = 9
    DONE_FOR_DAY = 10

    @property
    def is_terminal(self) -> bool:
        """No further executions are expected (late fills are still possible; see orders.py)."""
        return self in _TERMINAL

    @property
    def is_pending(self) -> bool:
        return self in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class LiquidityFlag(IntEnum):
    MAKER = 1
    TAKER = 2
    MIDPOINT = 3


class ExecType(IntEnum):
    NEW = 1
    REJECTED = 2
    TRADE = 3
    CANCELED = 4
    CANCEL_REJECTED = 5
    REPLACED = 6
    REPLACE_REJECTED = 7
    EXPIRED = 8
    DONE_FOR_DAY = 9


class RejectCode(IntEnum):
    MAX_ORDER_QUANTITY = 1
    MAX_NOTIONAL = 2
    PRICE_COLLAR = 3
    RESTRICTED_SYMBOL = 4
    RATE_LIMIT = 5
    VENUE = 6


class AlgorithmKind(IntEnum):
    TWAP = 1
    VWAP = 2
    POV = 3
    IS = 4
    ARRIVAL = 5
    ICEBERG = 6


class AlgoEventKind(IntEnum):
    STARTED = 1
    SLICE_SENT = 2
    PAUSED = 3
    RESUMED = 4
    ADJUSTED = 5
    DEVIATION = 6
    COMPLETED = 7
    CANCELED = 8
    FAILED = 9
    CREATED = 10
    SLICE_ROUTED = 11
    SLICE_FILLED = 12
    SLICE_CLOSED = 13
    SLICE_CANCEL_REQUESTED = 14


class Urgency(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3


class VenueKind(IntEnum):
    LIT = 1
    DARK = 2
    BROKER = 3


# Proto enum name prefixes, for the agreement test and for readable names in messages.
PROTO_PREFIX: dict[type[IntEnum], str] = {
    Side: "SIDE",
    OrderType: "ORDER_TYPE",
    TimeInForce: "TIME_IN_FORCE",
    OrderStatus: "ORDER_STATUS",
    LiquidityFlag: "LIQUIDITY_FLAG",
    ExecType: "EXEC_TYPE",
    RejectCode: "REJECT_CODE",
    AlgorithmKind: "ALGORITHM_KIND",
    Urgency: "URGENCY",
    VenueKind: "VENUE_KIND",
    AlgoEventKind: "ALGO_EVENT_KIND",
}
