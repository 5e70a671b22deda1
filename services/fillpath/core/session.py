"""The trading session of a US equity: when it opens, how long it lasts, and how its volume
falls across the day. Reference data that the market lab simulates and the algorithms schedule
against (VWAP follows the profile)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

OPEN_TIME = time(9, 30)
TIMEZONE = "America/New_York"
SESSION_SECONDS = 6.5 * 3600.0

# Share of a US equity's daily volume in each half hour from 09:30 to 16:00: the familiar U
# (heavy open, quiet lunch, heaviest close).
US_EQUITY_PROFILE = (
    0.118, 0.083, 0.069, 0.062, 0.057, 0.054, 0.052, 0.054, 0.058, 0.065, 0.075, 0.095, 0.158,
)  # fmt: skip


def open_of(day: date, open_time: time = OPEN_TIME, timezone: str = TIMEZONE) -> datetime:
    """The open of `day`'s session, in UTC."""
    return datetime.combine(day, open_time, tzinfo=ZoneInfo(timezone)).astimezone(UTC)
