"""The chooser remembers which instructions its profiles take, and still refuses the rest."""

from __future__ import annotations

import pytest

from fillpath.core.enums import Side
from fillpath.core.errors import InvalidArgument
from fillpath.infra.reference_data import load_reference_data
from fillpath.infra.resources import load_algo_profiles
from fillpath.strategy.choice import Chooser, SelectionRequest
from fillpath.strategy.main import load_policy
from tests.factories import MIDDAY, ORDINARY_MARKET


def request(order_id: str, **params: float) -> SelectionRequest:
    return SelectionRequest(
        order_id=order_id, account="DESK-EQ", symbol="ACME", side=Side.BUY, quantity=2_000,
        params=params,
    )  # fmt: skip


def test_instructions_a_profile_refuses_stay_refused_after_others_were_taken() -> None:
    reference = load_reference_data()
    profiles = load_algo_profiles(None)
    policy, _ = load_policy(None, profiles, reference.instruments)
    chooser = Chooser(policy, profiles, reference.instruments)
    plain = chooser.choice(request("o-1"), ORDINARY_MARKET, MIDDAY)
    for attempt in ("o-2", "o-3"):  # refused the first time, and again
        with pytest.raises(InvalidArgument) as refused:
            chooser.choice(request(attempt, bogus=1.0), ORDINARY_MARKET, MIDDAY)
        assert refused.value.violations[0].field == "instructions.params.bogus"
    again = chooser.choice(request("o-4"), ORDINARY_MARKET, MIDDAY)
    assert (again.algo_profile, again.rule) == (plain.algo_profile, plain.rule)
