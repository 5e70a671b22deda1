"""The execution policy's rules: the first that holds applies; loading refuses rules naming a
profile that does not exist or overriding outside its bounds (the field named), and reports the
rules that can never match or that an earlier rule shadows."""

from __future__ import annotations

from typing import Any

import pytest

from fillpath.core.enums import Side, Urgency
from fillpath.core.errors import InvalidArgument
from fillpath.infra.resources import load_algo_profiles, resources_from_documents
from fillpath.strategy.rules import OrderFacts, Policy, check, policy_of

PROFILES = load_algo_profiles(None)
SYMBOLS = ("ACME", "GLBX", "INIT", "UMBR", "SPYX")
CLASSES = ("equity", "etf")


def strategy(*rules: dict[str, Any], name: str = "desk", **spec: Any) -> Policy:
    document = {
        "apiVersion": "fillpath.io/v1alpha1",
        "kind": "ExecutionStrategy",
        "metadata": {"name": name},
        "spec": {"rules": list(rules), **spec},
    }
    found = resources_from_documents([document], "ExecutionStrategy", origin="test")
    return policy_of(found, PROFILES)


def rule(name: str, profile: str = "vwap-standard", algorithm: str = "VWAP", **more: Any) -> dict:
    return {"name": name, "profile": {"name": profile, "algorithm": algorithm}, **more}


def order(**changes: Any) -> OrderFacts:
    facts: dict[str, Any] = {
        "symbol": "ACME", "instrument_class": "equity", "side": Side.BUY, "urgency": None,
        "account": "DESK-EQ", "size_pct_adv": 0.5, "notional": 1e6, "spread_bps": 2.0,
        "volatility_pct": 2.0, "minutes_to_close": 200.0, "minutes_since_open": 190.0,
    }  # fmt: skip
    return OrderFacts(**{**facts, **changes})


def taken_by(policy: Policy, facts: OrderFacts) -> str | None:
    """The name of the rule that takes the order ("" for the default), None for nothing."""
    found = policy.match(facts)
    return None if found is None else found.name


def test_the_first_rule_that_holds_applies_and_the_default_takes_the_rest() -> None:
    policy = strategy(
        rule("late", "arrival-urgent", "ARRIVAL", when={"minutesToClose": {"max": 30}}),
        rule("big-sells", "pov-10", "POV", when={"side": "SELL", "sizePctAdv": {"min": 5}}),
        rule("etfs", when={"instrumentClasses": ["etf"], "symbolPattern": "SPY.*"}),
        defaultProfile="twap-standard",
    )
    assert taken_by(policy, order(minutes_to_close=29.9)) == "late"
    assert taken_by(policy, order(minutes_to_close=30.0)) == ""
    assert policy.default is not None
    assert policy.default.profile.name == "twap-standard"
    big_sell = order(side=Side.SELL, size_pct_adv=5.0)
    assert taken_by(policy, big_sell) == "big-sells"
    assert taken_by(policy, order(size_pct_adv=5.0)) == ""  # a buy
    etf = order(symbol="SPYX", instrument_class="etf")
    assert taken_by(policy, etf) == "etfs"
    assert taken_by(policy, order(symbol="SPYX")) == ""


def test_without_a_default_an_order_no_rule_takes_gets_nothing() -> None:
    policy = strategy(rule("urgent", when={"urgency": ["HIGH"]}))
    assert taken_by(policy, order(urgency=Urgency.HIGH)) == "urgent"
    assert taken_by(policy, order(urgency=Urgency.LOW)) is None


def test_overrides_and_venues_are_read_as_the_engine_takes_them() -> None:
    (read,) = strategy(
        rule(
            "capped", "pov-10", "POV",
            candidates=[{"name": "vwap-standard", "algorithm": "VWAP"}],
            overrides={"participation": 0.08, "urgency": "LOW", "sliceIntervalSeconds": 30},
            venues={"prefer": ["lumen"], "exclude": ["orbit"], "allowDark": False},
        )
    ).rules  # fmt: skip
    assert read.params == (("participation", 0.08), ("slice_seconds", 30.0))
    assert read.urgency is Urgency.LOW
    assert [c.name for c in read.choices] == ["pov-10", "vwap-standard"]
    assert (read.prefer, read.exclude, read.allow_dark) == (("lumen",), ("orbit",), False)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (rule("a", "no-such-profile"), "desk.rules[0].profile.name"),
        (rule("a", "pov-10", "TWAP"), "desk.rules[0].profile.algorithm"),
        (
            rule("a", "pov-10", "POV", overrides={"participation": 0.5}),
            "desk.rules[0].overrides (params.participation)",
        ),
        (
            rule("a", "iceberg-passive", "ICEBERG", overrides={"urgency": "HIGH"}),
            "desk.rules[0].overrides (urgency)",
        ),
        (
            rule("a", candidates=[{"name": "pov-10", "algorithm": "POV"}],
                 overrides={"participation": 0.18}),
            "desk.rules[0].overrides (params.participation)",
        ),
        (rule("a", when={"symbolPattern": "AC(ME"}), "desk.rules[0].when.symbolPattern"),
    ],
)  # fmt: skip
def test_a_rule_that_cannot_work_is_refused_with_the_field_named(
    bad: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        strategy(bad)
    assert field in {v.field for v in refused.value.violations}, refused.value.violations


def test_loading_reports_rules_that_never_match_or_are_shadowed() -> None:
    policy = strategy(
        rule("bonds", when={"instrumentClasses": ["bond"]}),
        rule("nothing", when={"symbolPattern": "ZZ.*"}),
        rule("overnight", when={"minutesSinceOpen": {"min": 400}}),
        rule("unknown-desk", when={"accounts": ["DESK-FX"]}),
        rule("equities", when={"instrumentClasses": ["equity"]}),
        rule("big-equities", when={"instrumentClasses": ["equity"], "sizePctAdv": {"min": 5}}),
        rule("acme", when={"symbolPattern": "ACME|GLBX"}),
        rule("spyx-big", when={"symbolPattern": "SPY.", "sizePctAdv": {"min": 5}}),
        rule("spyx-bigger", when={"symbolPattern": "SPYX", "sizePctAdv": {"min": 10}}),
        rule("catch-all"),
        rule("after-all", when={"side": "SELL"}),
    )
    found = {
        f.rule.split("/")[1]: f.problem
        for f in check(policy, symbols=SYMBOLS, instrument_classes=CLASSES, accounts=["DESK-EQ"])
    }
    assert set(found) == {
        "bonds", "nothing", "overnight", "unknown-desk", "big-equities", "spyx-bigger",
        "after-all",
    }  # fmt: skip
    assert "no instrument is of class bond" in found["bonds"]
    assert "matches 'ZZ.*'" in found["nothing"]
    assert "390-minute session" in found["overnight"]
    assert "DESK-FX" in found["unknown-desk"]
    assert found["big-equities"].startswith("shadowed by desk/equities")
    assert found["spyx-bigger"].startswith("shadowed by desk/spyx-big")
    assert found["after-all"].startswith("shadowed by desk/catch-all")


def test_the_shipped_policy_loads_clean() -> None:
    from fillpath.infra.reference_data import load_reference_data
    from fillpath.strategy.main import load_policy

    reference = load_reference_data()
    policy, findings = load_policy(None, PROFILES, reference.instruments, reference.accounts)
    assert findings == []
    assert policy.default is not None
    assert [r.name for r in policy.rules][-1] == "standard"
