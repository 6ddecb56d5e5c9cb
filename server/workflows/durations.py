"""ISO 8601 durations and timer wake-up times (after a delay, at a weekday and time, or at a
date read from an event param), optionally in the contact's time zone."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?")
WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")


def parse_duration(text: str) -> timedelta:
    """``PT1M``, ``P1D``, ``P1DT2H``, ``P2W``…; years and months are refused (ambiguous)."""
    match = _DURATION.fullmatch(text.strip().upper()) if isinstance(text, str) else None
    if match is None or text.strip().upper() in {"P", "PT"} or text.strip().upper().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT1M, PT2H or P1D")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return timedelta(weeks=parts["w"], days=parts["d"], hours=parts["h"], minutes=parts["m"],
                     seconds=parts["s"])


def parse_time_of_day(text: str) -> time:
    match = _TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a time of day such as 09:30")
    return time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def parse_weekday(value: Any) -> int:
    """Monday is 0. Accepts 1-7 (Monday = 1), ``MO``…``SU`` and English day names."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 7:
        return value - 1
    if isinstance(value, str) and value[:2].upper() in WEEKDAYS and value.isalpha():
        return WEEKDAYS[value[:2].upper()]
    raise ValueError(f"{value!r} is not a weekday (1-7 with Monday = 1, or MO..SU)")


def zone(name: str | None) -> ZoneInfo | timezone:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known time zone such as Europe/Kyiv") from None


def parse_moment(value: Any, tz: ZoneInfo | timezone) -> datetime:
    """A date or date-time from an event param; naive values are in ``tz``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a date such as 2026-12-01 or 2026-12-01T10:00")
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), time(0, 0))
        except ValueError:
            raise ValueError(f"{value!r} is not a date such as 2026-12-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def next_weekday_time(now: datetime, *, weekday: int | None, at: time,
                      tz: ZoneInfo | timezone) -> datetime:
    """The first moment after ``now`` that is ``at`` o'clock (on ``weekday`` when given)."""
    local = now.astimezone(tz)
    for days in range(8):
        day = (local + timedelta(days=days)).date()
        if weekday is not None and day.weekday() != weekday:
            continue
        candidate = datetime.combine(day, at).replace(tzinfo=tz)
        if candidate > now:
            return candidate.astimezone(UTC)
    raise AssertionError("a weekday always comes within eight days")
