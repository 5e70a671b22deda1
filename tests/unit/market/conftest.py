from __future__ import annotations

from collections.abc import Callable

import pytest

from fillpath.core.instruments import Instrument
from fillpath.infra.reference_data import load_reference_data
from fillpath.market.config import LabConfig, LabParameters, lab_parameters
from fillpath.market.lab import MarketLab, lab_for


@pytest.fixture(scope="session")
def instruments() -> dict[str, Instrument]:
    return load_reference_data().instruments


@pytest.fixture(scope="session")
def params() -> dict[str, LabParameters]:
    return lab_parameters()


@pytest.fixture(scope="session")
def make_lab(
    instruments: dict[str, Instrument], params: dict[str, LabParameters]
) -> Callable[..., MarketLab]:
    def make(symbols: list[str], seed: int = 7, *, record: bool = False) -> MarketLab:
        return lab_for(LabConfig(seed=seed), instruments, params, symbols, record=record)

    return make
