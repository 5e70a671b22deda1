"""The strategy service on the embedded platform with the market lab: an order that names no
algorithm gets its strategy chosen from the shipped ExecutionStrategy (a `StrategySelected`
event) and is executed as chosen, without anyone calling StartExecution; SelectStrategy answers
with the rule that applied and its reasons, the same answer again for the same order; bad
requests are refused with the field named and record nothing; a promoted cost model chooses
among the rule's candidates and is hot-loaded, and realised costs are tracked beside its
predictions; a stormy market mid-execution hurries the order through the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fillpath.algo.execution import Execution
from fillpath.api.v1 import (
    algo_pb2,
    algo_pb2_grpc,
    common_pb2,
    events_pb2,
    oms_pb2,
    oms_pb2_grpc,
    strategy_pb2_grpc,
)
from fillpath.api.v1 import strategy_pb2 as pb
from fillpath.core.enums import Urgency
from fillpath.embedded import EmbeddedPlatform
from fillpath.market.gateway import SimulatedGateway
from fillpath.strategy.features import FEATURES
from fillpath.strategy.model import LearnedModel, Sample, fit
from tests.integration.lab_platform import Lab, lab_platform, run_until_completed, submit
from tests.polling import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[EmbeddedPlatform, SimulatedGateway, Lab]]:
    with lab_platform(tmp_path) as platform:
        yield platform


def test_an_order_naming_no_algorithm_is_executed_as_the_strategy_chose(
    desk: tuple[EmbeddedPlatform, SimulatedGateway, Lab],
) -> None:
    platform, gateway, clock = desk
    assert platform.algo is not None
    assert platform.strategy is not None
    end = clock.now() + timedelta(minutes=3)
    stamp = Timestamp()
    stamp.FromDatetime(end)
    with (
        grpc.insecure_channel(platform.oms_address) as oms_channel,
        grpc.insecure_channel(platform.algo_address) as algo_channel,
    ):
        oms = oms_pb2_grpc.OrderManagementServiceStub(oms_channel)
        api = algo_pb2_grpc.AlgoServiceStub(algo_channel)
        # Only a window: no algorithm, no profile.
        order = submit(oms, "strategy-1", 3_000, common_pb2.ExecutionInstructions(end_time=stamp))
        chosen = eventually(lambda: platform.strategy.strategies.recorded(order))
        assert (chosen.strategy, chosen.rule, chosen.algo_profile) == (
            "desk-default", "standard", "vwap-standard",
        )  # fmt: skip
        assert chosen.end_time == end
        assert "rule standard" in chosen.explanation
        (started,) = eventually(
            lambda: api.ListExecutions(algo_pb2.ListExecutionsRequest()).executions
        )
        assert (started.order_id, started.algo_profile) == (order, "vwap-standard")
        assert started.end_time.ToDatetime(tzinfo=UTC) == end
        done = run_until_completed(gateway, platform, api, started.execution_id)
        assert done.executed_quantity == 3_000
        # Performance tracking: once the order has ended, its realised cost against the arrival
        # mid the choice was made at, per strategy and profile.
        avg = oms.GetOrder(oms_pb2.GetOrderRequest(order_id=order)).order.avg_price_nanos
        with platform.strategy.pool.connection() as conn:
            (mid,) = conn.execute(
                "SELECT arrival_mid_nanos FROM strategy_selections WHERE order_id = %s", (order,)
            ).fetchone()  # type: ignore[misc]
        with grpc.insecure_channel(platform.strategy_address) as channel:
            stub = strategy_pb2_grpc.StrategyServiceStub(channel)
            (tracked,) = eventually(
                lambda: stub.GetPerformance(pb.GetPerformanceRequest()).profiles
            )
        assert (tracked.strategy, tracked.algo_profile, tracked.orders) == (
            "desk-default", "vwap-standard", 1,
        )  # fmt: skip
        assert tracked.mean_cost_bps == pytest.approx((avg - mid) / mid * 1e4, abs=1e-6)


def _select(
    platform: EmbeddedPlatform, request: pb.SelectStrategyRequest
) -> pb.SelectStrategyResponse:
    with grpc.insecure_channel(platform.strategy_address) as channel:
        response: pb.SelectStrategyResponse = strategy_pb2_grpc.StrategyServiceStub(
            channel
        ).SelectStrategy(request)
        return response


def _request(order_id: str, quantity: int, **fields: object) -> pb.SelectStrategyRequest:
    values: dict[str, object] = {
        "order_id": order_id, "account": "DESK-EQ", "symbol": "ACME",
        "side": common_pb2.SIDE_BUY, "quantity": quantity,
    }  # fmt: skip
    return pb.SelectStrategyRequest(**{**values, **fields})  # type: ignore[arg-type]


def test_select_strategy_names_the_rule_and_answers_the_same_again(
    desk: tuple[EmbeddedPlatform, SimulatedGateway, Lab],
) -> None:
    platform, _, _ = desk
    urgent = _select(platform, _request("what-if-1", 2_000, urgency=common_pb2.URGENCY_HIGH))
    assert (urgent.explanation.rule, urgent.algo_profile) == ("urgent", "arrival-urgent")
    assert urgent.urgency == common_pb2.URGENCY_HIGH
    assert urgent.explanation.features["size_pct_adv"] == pytest.approx(2_000 / 4_500_000 * 100)
    large = _select(platform, _request("what-if-2", 300_000))  # 6.7 % of ACME's ADV
    assert (large.explanation.rule, large.algo_profile) == ("large-in-volume", "pov-10")
    assert dict(large.params) == {"participation": 0.08}
    assert large.allow_dark
    again = _select(platform, _request("what-if-2", 10))
    assert again == large  # recorded once: the same order gets the same answer


def test_bad_requests_are_refused_with_the_field_named_and_record_nothing(
    desk: tuple[EmbeddedPlatform, SimulatedGateway, Lab],
) -> None:
    platform, _, _ = desk
    assert platform.strategy is not None
    cases = (
        (_request("bad-1", 100, symbol="NOPE"), "symbol"),
        (_request("bad-2", 0), "quantity"),
        (_request("bad-3", 100, urgency=9), "urgency"),
        (_request("", 100), "order_id"),
        (
            _request(
                "bad-4", 100, instructions=common_pb2.ExecutionInstructions(
                    params={"bogus": 1.0}
                ),
            ),
            "instructions.params.bogus",
        ),
    )  # fmt: skip
    for request, field in cases:
        with pytest.raises(grpc.RpcError) as refused:
            _select(platform, request)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (refused.value.details() or ""), refused.value.details()
        if request.order_id:
            assert platform.strategy.strategies.recorded(request.order_id) is None


def _model(version: str, cheapest: str) -> LearnedModel:
    """A model fitted on synthetic samples in which `cheapest` costs 1 bps and every other
    candidate of the standard rule 5, whatever the features (spread wide enough that any
    market is inside what it saw)."""
    rng = np.random.default_rng(3)
    found = []
    for i in range(60):
        values = {name: float(rng.uniform(-1_000, 1_000)) for name in FEATURES}
        for profile in ("vwap-standard", "twap-standard", "is-balanced", "pov-10"):
            cost = (1.0 if profile == cheapest else 5.0) + float(rng.normal(0, 0.1))
            found.append(Sample(scenario=i, features=values, profile=profile, cost_bps=cost))
    return fit(found, seed=1, version=version, trained_at=datetime(2026, 11, 20, tzinfo=UTC))


def test_a_promoted_model_chooses_among_the_rules_candidates_and_is_hot_loaded(
    desk: tuple[EmbeddedPlatform, SimulatedGateway, Lab],
) -> None:
    platform, _, _ = desk
    assert platform.strategy is not None
    registry = platform.strategy.registry
    registry.save(_model("m-twap", "twap-standard"))
    registry.save(_model("m-pov", "pov-10"))
    before = _select(platform, _request("model-0", 2_000))
    assert (before.algo_profile, before.explanation.model_version) == ("vwap-standard", "")
    with grpc.insecure_channel(platform.strategy_address) as channel:
        stub = strategy_pb2_grpc.StrategyServiceStub(channel)
        promoted = stub.PromoteModel(pb.PromoteModelRequest(version="m-twap")).model
        assert (promoted.version, promoted.promoted) == ("m-twap", True)
        assert list(promoted.features) == list(FEATURES)
        listed = {m.version: m.promoted for m in stub.ListModels(pb.ListModelsRequest()).models}
        assert listed == {"m-twap": True, "m-pov": False}
        with pytest.raises(grpc.RpcError) as missing:
            stub.PromoteModel(pb.PromoteModelRequest(version="m-nope"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    chosen = _select(platform, _request("model-1", 2_000))
    assert (chosen.explanation.rule, chosen.algo_profile) == ("standard", "twap-standard")
    assert chosen.explanation.model_version == "m-twap"
    costs = {c.algo_profile: c.predicted_cost_bps for c in chosen.explanation.candidates}
    assert set(costs) == {"vwap-standard", "twap-standard", "is-balanced", "pov-10"}
    assert costs["twap-standard"] == pytest.approx(1.0, abs=0.3)
    assert "model m-twap" in chosen.explanation.text
    # Promoted behind the service's back (another replica, `fillpath strategy promote`): the
    # service notices on its next look at the registry.
    registry.promote("m-pov")
    switched = eventually(
        lambda: (
            platform.strategy.strategies.model is not None
            and platform.strategy.strategies.model.version == "m-pov"
        )
    )
    assert switched
    assert _select(platform, _request("model-2", 2_000)).algo_profile == "pov-10"
    # Champion against challenger: each model's orders, realised against predicted.
    tracker = platform.strategy.tracker
    with platform.strategy.pool.connection() as conn:
        rows = conn.execute(
            "SELECT order_id, arrival_mid_nanos, predicted_cost_bps FROM strategy_selections"
            " WHERE order_id IN ('model-1', 'model-2') ORDER BY order_id"
        ).fetchall()
    realised = {}
    for (order_id, mid, predicted), paid_bps in zip(rows, (3.0, -2.0), strict=True):
        tracker.on_fill(order_id, f"E-{order_id}", 2_000, round(mid * (1 + paid_bps / 1e4)))
        tracker.on_end(order_id, datetime.now(UTC))
        realised[order_id] = (paid_bps, predicted)
    with grpc.insecure_channel(platform.strategy_address) as channel:
        found = strategy_pb2_grpc.StrategyServiceStub(channel).GetPerformance(
            pb.GetPerformanceRequest()
        )
    models = {m.version: m for m in found.models}
    assert set(models) == {"m-twap", "m-pov"}
    assert models["m-pov"].promoted
    assert not models["m-twap"].promoted
    paid, predicted = realised["model-1"]
    assert models["m-twap"].mean_cost_bps == pytest.approx(paid, abs=1e-3)
    assert models["m-twap"].mean_prediction_error_bps == pytest.approx(paid - predicted, abs=1e-3)
    assert {(d.model_version, d.orders) for d in found.drift} == {("m-twap", 1), ("m-pov", 1)}
    profiles = {p.algo_profile: p.orders for p in found.profiles}
    assert profiles == {"twap-standard": 1, "pov-10": 1}  # model-0 never traded


def _execution(platform: EmbeddedPlatform, order: str) -> Execution | None:
    """The engine's execution of the order, once it has started one."""
    assert platform.algo is not None
    try:
        return platform.algo.algos.execution(f"X{order}")
    except KeyError:
        return None


def _quote(symbol: str, at: float, mid: int) -> events_pb2.EventEnvelope:
    quote = events_pb2.ConsolidatedQuoteUpdated(
        symbol=symbol, exchange_time_unix_nanos=round(at * 1e9), bid_price_nanos=mid - 5_000_000,
        bid_size=1_000, ask_price_nanos=mid + 5_000_000, ask_size=1_000,
    )  # fmt: skip
    return events_pb2.EventEnvelope(
        event_type="ConsolidatedQuoteUpdated", consolidated_quote_updated=quote
    )


def test_a_stormy_market_mid_execution_hurries_the_order_through_the_engine(
    desk: tuple[EmbeddedPlatform, SimulatedGateway, Lab],
) -> None:
    platform, gateway, clock = desk
    assert platform.algo is not None
    assert platform.strategy is not None
    stamp = Timestamp()
    stamp.FromDatetime(clock.now() + timedelta(minutes=30))
    with grpc.insecure_channel(platform.oms_address) as channel:
        oms = oms_pb2_grpc.OrderManagementServiceStub(channel)
        order = submit(oms, "stormy-1", 5_000, common_pb2.ExecutionInstructions(end_time=stamp))
    chosen = eventually(lambda: platform.strategy.strategies.recorded(order))
    assert chosen.urgency is None  # the profile's own (MEDIUM)
    execution = eventually(lambda: _execution(platform, order))
    assert execution.urgency is Urgency.MEDIUM
    strategies = platform.strategy.strategies
    for _ in range(120):  # worked from its first fill on: its regime is watched
        gateway.advance_to(gateway.lab.now + 1.0)
        platform.algo.algos.tick()
        if strategies.watching(order):
            break
    assert strategies.watching(order)
    # The strategy's view of ACME: the mid swings 1 % every 30 s for 20 minutes (the lab's own
    # feed is not stepped meanwhile).
    start = gateway.lab.time_of(gateway.lab.now).timestamp()
    mid = gateway.lab.model("ACME").tick_nanos * 10_000
    for k in range(1, 41):
        strategies.on_market_data(_quote("ACME", start + 30 * k, mid + (k % 2) * mid // 100))
    (recommended,) = eventually(lambda: strategies.recommended(order))
    assert recommended.urgency is Urgency.HIGH
    assert recommended.regime_now.startswith("stormy/")
    assert "finish sooner" in recommended.reason
    # The engine applies it to the execution (ExecutionAdjusted), within the profile's bounds.
    eventually(lambda: execution.urgency is Urgency.HIGH)
