"""Settings travel to child processes as FILLPATH_* variables and come back unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from fillpath.infra.settings import BusSettings, OmsSettings, Settings


def test_settings_survive_the_trip_through_the_environment() -> None:
    settings = Settings(
        data_dir=Path("/srv/fillpath"),
        config_dir=Path("/etc/fillpath"),
        bus=BusSettings(kind="pulsar", pulsar_url="pulsar://broker:6650", topic_prefix="t-"),
        oms=OmsSettings(address="0.0.0.0:7000", processes=3, expiry_interval=0.5),
        trace_to_console=True,
    )
    assert Settings.from_env(settings.to_env()) == settings


def test_an_unknown_bus_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="bus kind 'kafka' is none of in-process, pulsar"):
        Settings.from_env({"FILLPATH_BUS": "kafka"})
