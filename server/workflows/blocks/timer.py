"""``timer``: wait a duration, or until a weekday/time or a date param; the run pauses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.workflows.blocks.base import Block, BlockType, Say, register
from server.workflows.durations import (
    next_weekday_time,
    parse_duration,
    parse_moment,
    parse_time_of_day,
    parse_weekday,
    zone,
)
from server.workflows.runtime import BlockRuntime, RunView, StepFailed, StepOutcome


def check(block: Block, say: Say) -> None:
    if ("duration" in block) == ("until" in block):
        say("duration", 'give either "duration" (such as "PT1M") or "until"')
        return
    if "duration" in block:
        try:
            parse_duration(block["duration"])
        except ValueError as exc:
            say("duration", str(exc))
    else:
        until = block["until"]
        if not isinstance(until, dict) or not ({"time", "param"} & until.keys()):
            say("until", 'must be {"weekday", "time"}, {"time"} or {"param"} (a date param)')
            return
        try:
            if "time" in until:
                parse_time_of_day(until["time"])
            if "weekday" in until:
                parse_weekday(until["weekday"])
            if "param" in until and not (isinstance(until["param"], str) and until["param"]):
                raise ValueError("param must name an event param holding a date")
        except ValueError as exc:
            say("until", str(exc))
    tz = block.get("timeZone")
    if tz is not None and tz != "contact":
        try:
            zone(tz if isinstance(tz, str) else "")
        except ValueError as exc:
            say("timeZone", f'{exc}, or "contact"')


async def run(block: Block, view: RunView, rt: BlockRuntime) -> StepOutcome:
    now = rt.now()
    if "duration" in block:
        wake = now + parse_duration(block["duration"])
    else:
        tz_name = block.get("timeZone")
        if tz_name == "contact":
            contact = await rt.contact(view)
            tz_name = contact.time_zone if contact else None
        try:
            tz = zone(tz_name)
        except ValueError:
            tz = zone(None)
        wake = _until(block["until"], view, now, tz)
    wake = max(wake, now)
    return StepOutcome("done", block.get("next"), wait_until=wake,
                       detail={"until": wake.isoformat()})


def _until(until: dict[str, Any], view: RunView, now: datetime, tz: Any) -> datetime:
    if "param" in until:
        try:
            moment = parse_moment(view.params.get(until["param"]), tz)
        except ValueError as exc:
            raise StepFailed(f"timer: param {until['param']!r}: {exc}") from None
        if "time" in until:
            at = parse_time_of_day(until["time"])
            moment = moment.astimezone(tz).replace(hour=at.hour, minute=at.minute,
                                                   second=at.second, microsecond=0)
        if "offset" in until:
            sign = -1 if str(until["offset"]).startswith("-") else 1
            moment += sign * parse_duration(str(until["offset"]).lstrip("+-"))
        return moment
    weekday = parse_weekday(until["weekday"]) if "weekday" in until else None
    return next_weekday_time(now, weekday=weekday, at=parse_time_of_day(until["time"]), tz=tz)


register(BlockType("timer", run=run, check=check, waits=True))
