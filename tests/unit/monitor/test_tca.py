"""TCA against worked examples computed by hand (the arithmetic is in the comments), to 1e-9."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fillpath.cli import main
from fillpath.core.errors import InvalidArgument
from fillpath.monitor.tca import aggregate, compute_from_document

TOL = 1e-9

# A buy of 1,000 filled in two fills, one taking at the ask, one resting at the bid.
BUY: dict[str, Any] = {
    "order": {
        "side": "buy", "quantity": 1000, "decision_price": 100.00,
        "arrival_time": 0, "end_time": 100, "arrival_bid": 100.00, "arrival_ask": 100.10,
        "end_mid": 100.15, "post_trade_mid": 100.25, "close_price": 100.30,
        "fees": {"commission": 0.001, "taker_fee": 0.003, "maker_rebate": 0.002},
    },
    "fills": [
        {"time": 10, "quantity": 400, "price": 100.10, "bid": 100.00, "ask": 100.10,
         "liquidity": "taker"},
        {"time": 50, "quantity": 600, "price": 100.05, "bid": 100.05, "ask": 100.15,
         "liquidity": "maker"},
    ],
    "tape": [
        {"time": 5, "quantity": 200, "price": 100.06},
        {"time": 10, "quantity": 400, "price": 100.10, "own": True},
        {"time": 30, "quantity": 300, "price": 100.02},
        {"time": 50, "quantity": 600, "price": 100.05, "own": True},
        {"time": 80, "quantity": 500, "price": 100.12},
        {"time": 100, "quantity": 1000, "price": 100.20},
    ],
    "quotes": [
        {"time": 0, "bid": 100.00, "ask": 100.10},
        {"time": 12, "bid": 100.02, "ask": 100.12},
        {"time": 55, "bid": 100.10, "ask": 100.20},
    ],
    "markout_horizons_seconds": [1, 5],
}  # fmt: skip

# A sell of 500 of which 200 filled (taking at the bid); no quotes: markouts use the tape.
SELL: dict[str, Any] = {
    "order": {
        "side": "sell", "quantity": 500, "decision_price": 50.00,
        "arrival_time": 0, "end_time": 60, "arrival_bid": 49.98, "arrival_ask": 50.02,
        "end_mid": 49.90, "post_trade_mid": 49.85,
        "fees": {"commission": 0.002, "taker_fee": 0.003, "maker_rebate": 0.001},
    },
    "fills": [
        {"time": 20, "quantity": 200, "price": 49.97, "bid": 49.97, "ask": 50.01,
         "liquidity": "taker"},
    ],
    "tape": [
        {"time": 10, "quantity": 300, "price": 49.99},
        {"time": 20, "quantity": 200, "price": 49.97, "own": True},
        {"time": 40, "quantity": 500, "price": 49.95},
    ],
    "markout_horizons_seconds": [30],
}  # fmt: skip


def test_buy_order_metrics_match_the_worked_example() -> None:
    r = compute_from_document(BUY)

    assert r["filled_quantity"] == 1000
    assert r["fill_rate"] == 1.0
    assert r["average_price"] == pytest.approx(100.07, abs=TOL)  # (400·100.10 + 600·100.05) / 1000
    assert r["fees"] == pytest.approx(1.0, abs=TOL)  # 1000·0.001 + 400·0.003 − 600·0.002
    b = r["benchmarks"]
    assert b["arrival_mid"] == pytest.approx(100.05, abs=TOL)
    assert b["vwap"] == pytest.approx(100.074, abs=TOL)  # 200148 / 2000, the t=100 trade excluded
    assert b["vwap_excluding_own"] == pytest.approx(100.078, abs=TOL)  # 100078 / 1000
    assert b["twap"] == pytest.approx(100.069, abs=TOL)  # 10006.9 / 100
    assert b["twap_excluding_own"] == pytest.approx(100.052, abs=TOL)  # 10005.2 / 100
    s = r["slippage_bps"]
    assert s["decision"] == pytest.approx(7.0, abs=TOL)
    assert s["arrival"] == pytest.approx(200 / 100.05, abs=TOL)  # 0.02 / 100.05 · 1e4
    assert s["arrival_with_fees"] == pytest.approx(210 / 100.05, abs=TOL)  # +0.001 per share
    assert s["vwap"] == pytest.approx(-40 / 100.074, abs=TOL)
    assert s["twap"] == pytest.approx(10 / 100.069, abs=TOL)
    assert s["close"] == pytest.approx(-2300 / 100.30, abs=TOL)
    assert r["participation"] == pytest.approx(0.5, abs=TOL)
    cur, bps = r["implementation_shortfall"]["currency"], r["implementation_shortfall"]["bps"]
    assert cur == pytest.approx(
        {"delay": 50.0, "trading": 20.0, "opportunity": 0.0, "fees": 1.0, "total": 71.0}, abs=TOL
    )
    assert bps == pytest.approx(
        {"delay": 5.0, "trading": 2.0, "opportunity": 0.0, "fees": 0.1, "total": 7.1}, abs=TOL
    )
    assert r["impact_bps"]["permanent"] == pytest.approx(2000 / 100.05, abs=TOL)
    assert r["impact_bps"]["temporary"] == pytest.approx(200 / 100.05 - 1000 / 100.05, abs=TOL)


def test_buy_fill_metrics_match_the_worked_example() -> None:
    taker, maker = compute_from_document(BUY)["fills"]

    assert taker["slippage_vs_mid_bps"] == pytest.approx(500 / 100.05, abs=TOL)
    assert taker["effective_spread_bps"] == pytest.approx(1000 / 100.05, abs=TOL)
    assert taker["spread_capture"] == pytest.approx(-1.0, abs=TOL)  # paid the whole half-spread
    assert maker["slippage_vs_mid_bps"] == pytest.approx(-500 / 100.10, abs=TOL)
    assert maker["spread_capture"] == pytest.approx(1.0, abs=TOL)  # bought at the bid
    # Markouts: mids from the quotes at or before t + h.
    assert taker["markouts_bps"] == pytest.approx({"1s": 500 / 100.05, "5s": 300 / 100.07}, abs=TOL)
    assert maker["markouts_bps"] == pytest.approx(
        {"1s": -200 / 100.07, "5s": -1000 / 100.15}, abs=TOL
    )


def test_partially_filled_sell_matches_the_worked_example() -> None:
    r = compute_from_document(SELL)

    assert r["fill_rate"] == pytest.approx(0.4, abs=TOL)
    assert r["fees"] == pytest.approx(1.0, abs=TOL)  # 200·0.002 + 200·0.003
    s = r["slippage_bps"]
    assert s["arrival"] == pytest.approx(6.0, abs=TOL)  # sold 3 cents under a 50.00 mid
    assert s["arrival_with_fees"] == pytest.approx(7.0, abs=TOL)  # 0.005 per share more
    assert s["vwap"] == pytest.approx(-40 / 49.966, abs=TOL)  # VWAP 49966 / 1000
    assert s["vwap_excluding_own"] == pytest.approx(-50 / 49.965, abs=TOL)
    assert r["participation"] == pytest.approx(0.2, abs=TOL)
    cur, bps = r["implementation_shortfall"]["currency"], r["implementation_shortfall"]["bps"]
    # delay −200·(50.00 − 50.00); trading −200·(49.97 − 50.00); opportunity −300·(49.90 − 50.00)
    assert cur == pytest.approx(
        {"delay": 0.0, "trading": 6.0, "opportunity": 30.0, "fees": 1.0, "total": 37.0}, abs=TOL
    )
    assert bps == pytest.approx(
        {"delay": 0.0, "trading": 2.4, "opportunity": 12.0, "fees": 0.4, "total": 14.8}, abs=TOL
    )
    assert r["impact_bps"] == pytest.approx({"permanent": 30.0, "temporary": -9.0}, abs=TOL)
    (fill,) = r["fills"]
    assert fill["slippage_vs_mid_bps"] == pytest.approx(200 / 49.99, abs=TOL)
    assert fill["spread_capture"] == pytest.approx(-1.0, abs=TOL)  # sold at the bid
    # No quotes: the mid 30 s later is the tape's last trade then (49.95): the price fell after
    # we sold — favourable, so a negative cost.
    assert fill["markouts_bps"] == pytest.approx({"30s": -200 / 49.95}, abs=TOL)


def test_unfilled_order_has_only_opportunity_cost() -> None:
    document = {**SELL, "fills": [], "tape": [t for t in SELL["tape"] if not t.get("own")]}

    r = compute_from_document(document)

    assert r["average_price"] is None
    assert r["slippage_bps"]["arrival"] is None
    assert r["implementation_shortfall"]["currency"]["total"] == pytest.approx(50.0, abs=TOL)


def test_bad_document_names_every_bad_field() -> None:
    bad = {
        **BUY,
        "order": {**BUY["order"], "side": "hold", "quantity": -5},
        "fills": [{**BUY["fills"][0], "price": "abc", "liquidity": "both"}],
    }

    with pytest.raises(InvalidArgument) as raised:
        compute_from_document(bad)

    fields = {v.field for v in raised.value.violations}
    assert fields == {"order.side", "order.quantity", "fills[0].price", "fills[0].liquidity"}


def test_aggregate_gives_distributions_per_group() -> None:
    rows = [
        {"venue": "lumen", "slippage": 1.0, "notional": 100.0},
        {"venue": "lumen", "slippage": 3.0, "notional": 300.0},
        {"venue": "shade", "slippage": -2.0, "notional": 50.0},
    ]

    by_venue = aggregate(rows, "venue", "slippage", weight="notional")

    assert by_venue["lumen"]["count"] == 2
    assert by_venue["lumen"]["mean"] == pytest.approx(2.0)
    assert by_venue["lumen"]["weighted_mean"] == pytest.approx(2.5)  # (100 + 900) / 400
    assert by_venue["lumen"]["median"] == pytest.approx(2.0)
    assert by_venue["shade"]["stdev"] == 0.0


def test_tca_compute_command_prints_the_metrics_as_json(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(BUY))

    result = CliRunner().invoke(main, ["tca", "compute", str(path)])

    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["implementation_shortfall"]["bps"]["total"] == pytest.approx(7.1, abs=TOL)


def test_tca_compute_command_refuses_a_bad_file_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps({**BUY, "order": {**BUY["order"], "side": "hold"}}))

    result = CliRunner().invoke(main, ["tca", "compute", str(path)])

    assert result.exit_code != 0
    assert "order.side" in result.output


def test_tca_report_writes_html_with_the_figures_and_a_csv_of_the_fills(tmp_path: Path) -> None:
    buy, sell = tmp_path / "buy.json", tmp_path / "sell.json"
    buy.write_text(
        json.dumps({**BUY, "order": {**BUY["order"], "id": "ACME-1", "algorithm": "TWAP"}})
    )
    sell.write_text(json.dumps(SELL))  # no algorithm: DIRECT
    out = tmp_path / "report" / "tca.html"

    result = CliRunner().invoke(
        main, ["tca", "report", str(buy), str(sell), "--out", str(out)], terminal_width=200
    )

    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<h2>ACME-1</h2>" in page
    assert "7.1000" in page  # the buy's shortfall total, bps (as tca compute says)
    # Two executions, then the distributions by venue and by algorithm.
    assert page.count("data:image/png;base64,") == 4
    by_algorithm = page[page.index("By algorithm") :]
    # One order each: the buy's arrival slippage under TWAP, the sell's under DIRECT (bps).
    assert "<tr><th>TWAP</th><td>n=1, mean 2.00, median 2.00" in by_algorithm
    assert "<tr><th>DIRECT</th><td>n=1, mean 6.00, median 6.00" in by_algorithm
    rows = out.with_suffix(".csv").read_text().splitlines()
    assert rows[0].startswith("order,algorithm,venue,time,quantity,price")
    assert len(rows) == 1 + 3  # three fills


def test_a_fill_with_its_venue_fee_uses_it_and_a_midpoint_cross_pays_no_scheduled_fee() -> None:
    fills = [
        {**BUY["fills"][0], "fee": 2.0},  # instead of 400 · 0.003
        {**BUY["fills"][1], "liquidity": "midpoint"},  # neither rebate nor taker fee
    ]

    r = compute_from_document({**BUY, "fills": fills})

    assert r["fees"] == pytest.approx(1000 * 0.001 + 2.0, abs=TOL)
    assert r["fills"][1]["liquidity"] == "midpoint"


def test_without_any_market_data_the_markouts_are_unknown_not_an_error() -> None:
    document = {
        "order": {
            "side": "buy", "quantity": 100, "decision_price": 10, "arrival_time": 0,
            "end_time": 10, "arrival_bid": 9.99, "arrival_ask": 10.01, "end_mid": 10,
            "post_trade_mid": 10,
        },
        "fills": [{"time": 1, "quantity": 50, "price": 10.01, "bid": 9.99, "ask": 10.01,
                   "liquidity": "taker"}],
        "tape": [],
    }  # fmt: skip
    result = compute_from_document(document)
    assert result["fills"][0]["markouts_bps"]["1s"] is None
    assert result["slippage_bps"]["arrival"] == pytest.approx(10.0)  # 0.01 over a 10.00 mid
