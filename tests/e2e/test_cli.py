"""The `fillpath` command as a desk uses it: `up` in one terminal, `orders …`, `replay` and
`verify` in another."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fillpath.cli import main
from fillpath.infra.service_process import spawn_service


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("up")
    service = spawn_service(
        "fillpath.cli",
        {},
        args=[
            "up",
            "--data-dir",
            str(data),
            "--oms-address",
            "127.0.0.1:0",
            "--monitor-address",
            "127.0.0.1:0",
            "--sor-address",
            "127.0.0.1:0",
            "--algo-address",
            "127.0.0.1:0",
            "--dashboard-address",
            "127.0.0.1:0",
        ],
        log_file=data / "up.log",
    )
    yield service.address, data
    assert service.stop() == 0, "fillpath up should stop cleanly on SIGTERM"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def orders(address: str, *args: str) -> Result:
    return run("orders", "--oms", address, "--actor", "e2e-trader", *args)


def test_submit_show_amend_cancel_and_history(platform: tuple[str, Path]) -> None:
    address, _ = platform
    submitted = orders(
        address, "submit", "--account", "DESK-EQ", "--portfolio", "ALPHA", "--symbol", "ACME",
        "--side", "buy", "--qty", "5000", "--limit", "102.40", "--client-order-id", "e2e-1",
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    order_id = re.search(r"(P[0-9A-F]{20})", submitted.output).group(1)  # type: ignore[union-attr]
    assert "NEW" in submitted.output
    assert "102.40" in submitted.output

    again = orders(
        address, "submit", "--account", "DESK-EQ", "--portfolio", "ALPHA", "--symbol", "ACME",
        "--side", "buy", "--qty", "5000", "--limit", "102.40", "--client-order-id", "e2e-1",
    )  # fmt: skip
    assert "already submitted" in again.output

    listed = orders(address, "list", "--symbol", "ACME")
    assert order_id in listed.output

    amended = orders(address, "amend", order_id, "--qty", "6000", "--reason", "more")
    assert amended.exit_code == 0, amended.output
    assert "6,000" in amended.output

    canceled = orders(address, "cancel", order_id, "--reason", "done")
    assert "CANCELED" in canceled.output

    history = orders(address, "history", order_id)
    for expected in (
        "OrderSubmitted",
        "OrderReplaced",
        "amended to 6,000",
        "cancel requested: done",
        "e2e-trader",
    ):
        assert expected in history.output

    shown = orders(address, "show", order_id)
    assert "CANCELED" in shown.output


def test_bad_input_names_the_field_and_value(platform: tuple[str, Path]) -> None:
    address, _ = platform
    refused = orders(
        address, "submit", "--account", "DESK-EQ", "--portfolio", "ALPHA", "--symbol", "NOPE",
        "--side", "sell", "--qty", "0", "--limit", "10.00",
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "INVALID_ARGUMENT" in refused.output
    assert "symbol: 'NOPE': unknown instrument" in refused.output
    assert "quantity: 0: must be positive" in refused.output
    bad_price = orders(
        address, "submit", "--account", "DESK-EQ", "--portfolio", "ALPHA", "--symbol", "ACME",
        "--side", "sell", "--qty", "1", "--limit", "1.0000000001",
    )  # fmt: skip
    assert bad_price.exit_code == 2
    assert "--limit" in bad_price.output
    missing = orders(address, "show", "P00000000000000000000")
    assert missing.exit_code == 1
    assert "NOT_FOUND" in missing.output


def test_replay_and_verify_against_the_running_platform(platform: tuple[str, Path]) -> None:
    address, data = platform
    orders(
        address, "submit", "--account", "DESK-EQ", "--portfolio", "BETA", "--symbol", "GLBX",
        "--side", "sell", "--qty", "100", "--type", "market",
    )  # fmt: skip
    replayed = run("replay", "--data-dir", str(data))
    assert replayed.exit_code == 0, replayed.output
    assert re.search(r"rebuilt order_view from \d+ events in \d+ streams", replayed.output)
    verified = run("verify", "--data-dir", str(data))
    assert verified.exit_code == 0, verified.output
    assert "OK" in verified.output
