"""`make demo` works parent orders that name no algorithm with the profiles the strategy service
chooses, through the router and the OMS, against the market lab on the embedded default; ends
with the choices and their reasons, each order's TCA, a clean verify and a plot of the
simulated day."""

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
    # No order named its algorithm: the strategy service chose by the desk's rules (urgency
    # low → patient, high → urgent, else standard), with its reasons, and the engine worked each
    # as chosen to the end of its window, placing the children itself (the OMS records who).
    choices = result.output[result.output.index("Strategy choices") :]
    choices = choices[: choices.index("Parent orders")]
    for order, rule, profile in (
        ("ACME buy 12,000", "standard", "vwap-standard"),
        ("GLBX sell 40,000", "patient", "twap-standard"),
        ("INIT buy 6,000", "urgent", "arrival-urgent"),
        ("UMBR buy 800", "standard", "vwap-standard"),
    ):
        (row,) = [line for line in choices.splitlines() if order in line]
        assert f" {rule} " in row
        assert profile in row
        assert f"rule {rule} (" in row  # the why
    executions = result.output[result.output.index("Algorithm executions") :]
    executions = executions[: executions.index("fills by venue")]
    for algorithm, profile in (("VWAP", "vwap-standard"), ("TWAP", "twap-standard"),
                               ("ARRIVAL", "arrival-urgent")):  # fmt: skip
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
