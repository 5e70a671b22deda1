"""`make demo` trades against the market lab on the embedded default, ends with a clean verify
and leaves a plot of the simulated day."""

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
    for expected in ("RESTRICTED_SYMBOL", "PRICE_COLLAR", "CANCELED", "Audit trail of"):
        assert expected in result.output
    # Fills came back from the lab's venues: taken on a lit book, crossed in a dark pool.
    for expected in ("venue:lumen", "TAKER", "MIDPOINT", "ChildOrderFilled"):
        assert expected in result.output
    assert "verify: OK" in result.output
    assert "Transaction cost analysis" in result.output
    report = tmp_path / "tca.html"
    assert "<h2>ACME demo-acme-1</h2>" in report.read_text()
    plot = tmp_path / "lab-day-ACME.png"
    assert str(plot) in result.output.replace("\n", "")
    assert plot.read_bytes().startswith(b"\x89PNG")
