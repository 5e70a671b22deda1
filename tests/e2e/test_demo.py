"""`make demo` runs the scripted session on the embedded default and ends with a clean verify."""

from __future__ import annotations

from click.testing import CliRunner

from fillpath.cli import main


def test_demo_runs_the_whole_session_and_the_books_verify() -> None:
    result = CliRunner().invoke(main, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "duplicate=True, same order True" in result.output
    for expected in ("RESTRICTED_SYMBOL", "PRICE_COLLAR", "FILLED", "CANCELED", "Audit trail of"):
        assert expected in result.output
    assert "verify: OK" in result.output
