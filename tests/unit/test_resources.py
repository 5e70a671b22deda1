"""Resource YAML is held to the CRD's own schema: defaults filled in, bad fields named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fillpath.core.errors import InvalidArgument
from fillpath.infra.resources import load_resources, resources_from_documents
from fillpath.market.config import load_venues, venues_from_resources

VENUE = """
apiVersion: fillpath.io/v1alpha1
kind: Venue
metadata: {name: lumen}
spec:
  kind: lit
  fees: {makerFee: "-0.0020", takerFee: "0.0030"}
  connection: {type: simulated}
"""


def _load(text: str) -> list:
    return resources_from_documents(list(yaml.safe_load_all(text)), "Venue", origin="v.yaml")


def test_load_venue_fills_in_the_crd_defaults() -> None:
    (venue,) = _load(VENUE)

    assert venue.name == "lumen"
    assert venue.spec["enabled"] is True
    assert venue.spec["preference"] == 50
    assert venue.spec["latency"]["orderEntryMicros"] == 250
    assert venue.spec["fees"]["midpointFee"] == "0"


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        (("kind: lit", "kind: grey"), "v.yaml[0] spec.kind", "grey"),
        (('takerFee: "0.0030"', 'takerFee: "3 cents"'), "v.yaml[0] spec.fees.takerFee", "3 cents"),
        (("type: simulated", "type: telex"), "v.yaml[0] spec.connection.type", "telex"),
    ],
)
def test_load_venue_with_a_bad_field_names_it_and_its_value(
    change: tuple[str, str], field: str, value: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        _load(VENUE.replace(*change))

    (violation,) = raised.value.violations
    assert violation.field == field
    assert violation.value == value


def test_load_fix_venue_without_its_session_is_refused_as_the_cel_rule_says() -> None:
    with pytest.raises(InvalidArgument, match=r"connection.fix is required"):
        _load(VENUE.replace("type: simulated", "type: fix"))


def test_default_venues_are_four_lit_and_two_dark_lit_first() -> None:
    venues = load_venues()

    assert [v.kind for v in venues] == ["lit"] * 4 + ["dark"] * 2
    assert {v.name for v in venues if v.kind == "dark"} == {"shade", "umbra"}
    umbra = next(v for v in venues if v.name == "umbra")
    assert umbra.min_quantity == 2000
    assert umbra.midpoint_fee_nanos == 1_500_000


def test_venues_without_a_lit_one_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "venues.yaml"
    path.write_text(VENUE.replace("kind: lit", "kind: dark"))

    with pytest.raises(InvalidArgument, match="no simulated lit venue"):
        venues_from_resources(load_resources(path, "Venue", default="venues.yaml"))


def test_every_example_loads_with_its_crd_rules() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    loaded = {
        kind: [r.name for r in load_resources(examples / file, kind, default="")]
        for kind, file in (
            ("Venue", "venues.yaml"),
            ("AlgoProfile", "algoprofiles.yaml"),
            ("ExecutionStrategy", "executionstrategies.yaml"),
        )
    }

    assert len(loaded["Venue"]) == 6
    assert "iceberg-passive" in loaded["AlgoProfile"]
    assert loaded["ExecutionStrategy"] == ["equities-desk"]


def test_cel_rule_of_a_nested_field_is_reported_at_its_path() -> None:
    document = {
        "apiVersion": "fillpath.io/v1alpha1",
        "kind": "ExecutionStrategy",
        "metadata": {"name": "s"},
        "spec": {
            "rules": [
                {"name": "ok", "profile": {"name": "p", "algorithm": "TWAP"}},
                {
                    "name": "bad",
                    "profile": {"name": "p", "algorithm": "TWAP"},
                    "when": {"spreadBps": {"min": 20, "max": 5}},
                },
            ]
        },
    }

    with pytest.raises(InvalidArgument) as raised:
        resources_from_documents([document], "ExecutionStrategy", origin="s.yaml")

    (violation,) = raised.value.violations
    assert violation.field == "s.yaml[0] spec.rules[1].when.spreadBps"
    assert violation.reason == "a range's min must not exceed its max"
