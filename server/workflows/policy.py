"""The start policies (unique events, "skip if already running"), decided over the earlier
runs of the same workflow for the same contact or key. Shared by engine and simulator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from server.workflows.definition import Definition

ACTIVE = ("running", "waiting")


@dataclass(frozen=True, slots=True)
class PriorRun:
    contact_id: int | None
    key_value: str
    started_at: datetime
    status: str


def _same(run: PriorRun, contact_id: int | None, key_value: str, by_contact: bool) -> bool:
    if by_contact and contact_id is not None:
        return run.contact_id == contact_id
    return run.key_value == key_value


def refusal(d: Definition, *, contact_id: int | None, key_value: str, now: datetime,
            prior: Iterable[PriorRun]) -> str | None:
    """Why a new run may not start, or None. ``prior``: this workflow's runs (any version)."""
    by_contact = d.unique.by == "contact"
    for run in prior:
        if d.unique.mode == "once" and _same(run, contact_id, key_value, by_contact):
            return "unique once: already started for this " + (
                "contact" if by_contact and contact_id is not None else "key")
        if (d.unique.mode == "oncePer" and d.unique.period is not None
                and _same(run, contact_id, key_value, by_contact)
                and run.started_at > now - d.unique.period):
            return "unique oncePer: already started within the period"
        if (d.skip_if_running and run.status in ACTIVE
                and _same(run, contact_id, key_value, True)):
            return "skipIfRunning: a run for this contact is in progress"
    return None


def needs_history(d: Definition) -> bool:
    return d.unique.mode != "every" or d.skip_if_running
