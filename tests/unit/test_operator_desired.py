"""The operator's desired state: what a set of resources should produce in the cluster."""

from __future__ import annotations

from typing import Any

import yaml

from fillpath_operator import desired
from fillpath_operator.desired import DOMAINS, Settings

VENUES = DOMAINS["Venue"]


def venue(name: str, uid: str, taker: str = "0.0030") -> dict[str, Any]:
    return {
        "apiVersion": "fillpath.io/v1alpha1",
        "kind": "Venue",
        "metadata": {"name": name, "uid": uid, "namespace": "desk", "resourceVersion": "7"},
        "spec": {"kind": "lit", "fees": {"takerFee": taker}, "connection": {"type": "simulated"}},
        "status": {"observedGeneration": 1},
    }


def test_children_of_no_resources_are_none() -> None:
    assert desired.children(VENUES, "desk", [], Settings()) == []


def test_children_are_owned_by_every_resource_of_the_kind() -> None:
    resources = [venue("orbit", "u2"), venue("lumen", "u1")]

    config, deployment, service = desired.children(VENUES, "desk", resources, Settings())

    for child in (config, deployment, service):
        owners = child["metadata"]["ownerReferences"]
        assert [(o["name"], o["uid"]) for o in owners] == [("lumen", "u1"), ("orbit", "u2")]
        assert [o["controller"] for o in owners] == [True, False]
    assert (
        deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
        == (config["metadata"]["name"])
    )
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_config_renders_the_resources_as_fillpath_up_reads_them() -> None:
    config = desired.config_map(VENUES, "desk", [venue("orbit", "u2"), venue("lumen", "u1")])

    documents = list(yaml.safe_load_all(config["data"]["venues.yaml"]))

    assert [d["metadata"] for d in documents] == [{"name": "lumen"}, {"name": "orbit"}]
    assert all(set(d) == {"apiVersion", "kind", "metadata", "spec"} for d in documents)


def test_a_changed_resource_changes_the_config_and_rolls_the_deployment() -> None:
    before = desired.children(VENUES, "desk", [venue("lumen", "u1")], Settings())
    after = desired.children(VENUES, "desk", [venue("lumen", "u1", taker="0.0025")], Settings())

    assert before[0]["data"] != after[0]["data"]
    hash_of = lambda d: d["spec"]["template"]["metadata"]["annotations"]["fillpath.io/config-hash"]  # noqa: E731
    assert hash_of(before[1]) != hash_of(after[1])


def test_the_same_resources_render_the_same_bytes_in_any_order() -> None:
    a = desired.config_map(VENUES, "desk", [venue("a", "1"), venue("b", "2")])
    b = desired.config_map(VENUES, "desk", [venue("b", "2"), venue("a", "1")])

    assert a == b


def test_connection_secret_becomes_the_service_environment() -> None:
    (_, deployment, _) = desired.children(
        VENUES, "desk", [venue("lumen", "u1")], Settings(env_from_secret="fillpath-connections")
    )

    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "fillpath-connections"}}]


def test_the_algo_engine_reaches_the_oms_and_the_router_and_runs_alone() -> None:
    profile = {
        "apiVersion": "fillpath.io/v1alpha1", "kind": "AlgoProfile",
        "metadata": {"name": "twap-standard", "uid": "u1", "namespace": "desk"},
        "spec": {"algorithm": "TWAP"},
    }  # fmt: skip
    settings = Settings(replicas=3, oms_address="fillpath-oms.desk.svc:50051")

    (_, algo, _) = desired.children(DOMAINS["AlgoProfile"], "desk", [profile], settings)
    (_, sor, _) = desired.children(VENUES, "desk", [venue("lumen", "u1")], settings)

    env = {e["name"]: e["value"] for e in algo["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FILLPATH_OMS_ADDRESS"] == "fillpath-oms.desk.svc:50051"
    assert env["FILLPATH_SOR_ADDRESS"] == "fillpath-sor.desk.svc:50071"  # the router's Service
    assert env["FILLPATH_ALGO_ADDRESS"] == "0.0.0.0:50081"
    # One engine owns the executions: never two at once, not even during an update.
    assert (algo["spec"]["replicas"], algo["spec"]["strategy"]["type"]) == (1, "Recreate")
    assert (sor["spec"]["replicas"], sor["spec"]["strategy"]["type"]) == (3, "RollingUpdate")


def test_condition_keeps_its_transition_time_while_the_status_holds() -> None:
    first = desired.condition([], "Ready", True, "Rendered", "ok", generation=1, now="T1")
    same = desired.condition([first], "Ready", True, "Rendered", "ok", generation=2, now="T2")
    flipped = desired.condition([same], "Ready", False, "Broken", "no", generation=3, now="T3")

    assert (first["lastTransitionTime"], same["lastTransitionTime"]) == ("T1", "T1")
    assert flipped["lastTransitionTime"] == "T3"
    assert same["observedGeneration"] == 2


def test_strategy_naming_a_missing_or_different_profile_is_reported() -> None:
    strategy = {
        "spec": {
            "defaultProfile": "gone",
            "rules": [
                {"name": "a", "profile": {"name": "twap", "algorithm": "TWAP"}},
                {"name": "b", "profile": {"name": "vwap", "algorithm": "POV"}},
                {"name": "c", "profile": {"name": "nope", "algorithm": "IS"}},
                {
                    "name": "d",
                    "profile": {"name": "twap", "algorithm": "TWAP"},
                    "candidates": [{"name": "gone-too", "algorithm": "POV"}],
                },
            ],
        }
    }

    problems = desired.strategy_problems(strategy, {"twap": "TWAP", "vwap": "VWAP"})

    assert problems == [
        "defaultProfile 'gone' is not an AlgoProfile in this namespace",
        "rule 'b': AlgoProfile 'vwap' is VWAP, not POV",
        "rule 'c': AlgoProfile 'nope' does not exist",
        "rule 'd': AlgoProfile 'gone-too' does not exist",
    ]


def test_the_strategy_service_gets_the_profiles_beside_its_strategies() -> None:
    strategy = {
        "apiVersion": "fillpath.io/v1alpha1", "kind": "ExecutionStrategy",
        "metadata": {"name": "desk-default", "uid": "u1", "namespace": "desk"},
        "spec": {"rules": [{"name": "a", "profile": {"name": "twap", "algorithm": "TWAP"}}]},
    }  # fmt: skip
    profile = {
        "apiVersion": "fillpath.io/v1alpha1", "kind": "AlgoProfile",
        "metadata": {"name": "twap", "uid": "u2", "namespace": "desk"},
        "spec": {"algorithm": "TWAP"},
    }  # fmt: skip
    domain = DOMAINS["ExecutionStrategy"]

    config = desired.config_map(domain, "desk", [strategy], {"AlgoProfile": [profile]})

    assert sorted(config["data"]) == ["algoprofiles.yaml", "executionstrategies.yaml"]
    (read,) = yaml.safe_load_all(config["data"]["algoprofiles.yaml"])
    assert (read["kind"], read["metadata"]["name"]) == ("AlgoProfile", "twap")
    assert [o["name"] for o in config["metadata"]["ownerReferences"]] == ["desk-default"]


def figures(**overrides: Any) -> dict[str, Any]:
    base = {
        "score": 80.0, "liquidity": 4_000.0, "latency_micros": 200.0, "cost_bps": 2.0,
        "fill_rate": 0.4, "markout_bps": -0.5, "available": True, "circuit": "closed",
    }  # fmt: skip
    return base | overrides


def test_venue_quality_is_the_mean_over_instruments_of_what_is_known() -> None:
    quality, connected = desired.venue_quality(
        [figures(), figures(score=60.0, cost_bps=None, available=False)], "2026-11-21T10:00:00Z"
    )

    assert quality is not None
    assert quality["score"] == 70.0
    assert quality["costBps"] == 2.0  # the unknown cost is not averaged in as zero
    assert (quality["instruments"], quality["availableFor"]) == (2, 1)
    assert (connected.status, connected.reason) == (True, "Routing")
    assert "1 of 2 instruments" in connected.message


def test_venue_connected_follows_the_routers_breaker_and_markets() -> None:
    stamp = "2026-11-21T10:00:00Z"
    cases = {
        "open": (False, "CircuitOpen"),
        "half-open": (None, "Probing"),
    }
    for circuit, expected in cases.items():
        _, connected = desired.venue_quality([figures(circuit=circuit, available=False)], stamp)
        assert (connected.status, connected.reason) == expected

    _, unroutable = desired.venue_quality([figures(available=False)], stamp)
    assert (unroutable.status, unroutable.reason) == (False, "NotRoutable")
    quality, no_market = desired.venue_quality([], stamp)
    assert quality is None
    assert (no_market.status, no_market.reason) == (None, "NoMarketData")
