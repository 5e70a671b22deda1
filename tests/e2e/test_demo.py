"""`make demo` works parent orders with the algorithms they name, through the router and the
OMS, against the market lab on the embedded default; ends with each order's TCA, a clean verify
and a plot of the simulated day."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fillpath.cli import main


def test_demo_runs_the_whole_session_and_the_books_verify(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["demo", "--data-dir", str(tmp_path)], catch_exceptions=False, terminal_width=250
    )
    assert result.exit_code == 0, result.output
    assert "duplicate=True, same order True" in result.output
    for expected in ("RESTRICTED_SYMBOL", "PRICE_COLLAR", "Audit trail of"):
        assert expected in result.output
    # Each order named its algorithm; the engine worked all four to the end of their window,
    # placing the children itself (the OMS records who placed them).
    executions = result.output[result.output.index("Algorithm executions") :]
    executions = executions[: executions.index("fills by venue")]
    for algorithm, profile in (("VWAP", "vwap-standard"), ("TWAP", "twap-standard"),
                               ("IS", "is-balanced"), ("POV", "pov-10")):  # fmt: skip
        assert f" {algorithm} " in executions
        assert profile in executions
    assert executions.count("COMPLETED") == 4
    assert "40,000 / 40,000" in executions  # the TWAP, hurried at 10:10, sold all it had to
    assert "ChildOrderPlaced" in result.output
    assert "fillpath-algo" in result.output
    assert "taker" in result.output or "maker" in result.output
    assert "verify: OK" in result.output
    assert "Transaction cost analysis" in result.output
    report = tmp_path / "tca.html"
    assert "<h2>ACME demo-acme-1</h2>" in report.read_text()
    plot = tmp_path / "lab-day-ACME.png"
    assert str(plot) in result.output.replace("\n", "")
    assert plot.read_bytes().startswith(b"\x89PNG")
