"""Domain enums carry the numbers of their protobuf twins, so converting needs no table."""

from __future__ import annotations

from enum import IntEnum

import pytest

from fillpath.api.v1 import common_pb2, events_pb2
from fillpath.core.enums import PROTO_PREFIX

_PROTO_ENUMS = {
    "SIDE": common_pb2.Side,
    "ORDER_TYPE": common_pb2.OrderType,
    "TIME_IN_FORCE": common_pb2.TimeInForce,
    "ORDER_STATUS": common_pb2.OrderStatus,
    "LIQUIDITY_FLAG": common_pb2.LiquidityFlag,
    "EXEC_TYPE": common_pb2.ExecType,
    "REJECT_CODE": common_pb2.RejectCode,
    "ALGORITHM_KIND": common_pb2.AlgorithmKind,
    "URGENCY": common_pb2.Urgency,
    "VENUE_KIND": common_pb2.VenueKind,
    "ALGO_EVENT_KIND": events_pb2.AlgoEventKind,
}


@pytest.mark.parametrize("domain", list(PROTO_PREFIX), ids=lambda e: e.__name__)
def test_domain_enum_matches_proto_enum_by_name_and_number(domain: type[IntEnum]) -> None:
    prefix = PROTO_PREFIX[domain]
    proto = _PROTO_ENUMS[prefix]
    proto_members = {n: v for n, v in proto.items() if not n.endswith("_UNSPECIFIED")}
    assert {f"{prefix}_{m.name}": m.value for m in domain} == proto_members
