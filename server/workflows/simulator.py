"""The workflow simulator: a definition run against a list of events on a simulated clock.

Timers complete instantly, in time order; nothing is sent or stored. Blocks run through the
same ``blocks.execute`` and start policies as the engine, over an in-memory runtime.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from server.contacts.identity import IdentityNote, identifiers_from_params
from server.errors import InvalidArgument, Violation
from server.ingest.accept import Acceptance
from server.mail.compose import Letter
from server.templating.pool import RenderPool
from server.workflows.blocks import execute
from server.workflows.conditions import holds
from server.workflows.definition import Definition, parse_definition
from server.workflows.durations import parse_duration
from server.workflows.launch import accept_launched
from server.workflows.policy import PriorRun, needs_history, refusal
from server.workflows.runtime import ContactInfo, Delivery, RunView, StepOutcome
from server.workflows.segments import refuse_segment_trigger
from server.workflows.simcontacts import SimContacts

MAX_STEPS = 10_000
MAX_EVENTS = 1000
Templates = Callable[[int], Awaitable[tuple[str, str, str]]]
# Whether an address is on the account's unsubscribed list (the engine's rule, read live).
Listed = Callable[[str], Awaitable[bool]]


async def _nobody_listed(email: str) -> bool:
    return False


# Whether a contact (by id) is a stored member of a segment of the account.
Member = Callable[[int, int], Awaitable[bool]]


async def _no_member(segment_id: int, contact_id: int) -> bool:
    return False


@dataclass(slots=True)
class SimEvent:
    id: int
    type: str
    key: str
    params: dict[str, Any]
    contact_id: int | None
    at: datetime
    notes: tuple[IdentityNote, ...] = ()


@dataclass(slots=True)
class SimRun:
    id: int
    event: SimEvent
    status: str = "running"
    block: str | None = None
    seq: int = 1
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def view(self) -> RunView:
        return RunView(run_id=self.id, account_id=0, workflow_id=0, event_id=self.event.id,
                       contact_id=self.event.contact_id, event_type_key=self.event.type,
                       key_value=self.event.key, params=self.event.params,
                       started_at=self.started_at, seq=self.seq)


def _same_subject(run: SimRun, ev: SimEvent) -> bool:
    if run.event.contact_id is not None and ev.contact_id is not None:
        return run.event.contact_id == ev.contact_id
    return run.event.key == ev.key


class SimRuntime:
    """The BlockRuntime of the simulator: contacts, letters and calls kept in lists."""

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim
        self.sender = sim.sender
        self.renderer = sim.renderer

    def now(self) -> datetime:
        return self._sim.clock

    async def contact(self, run: RunView) -> ContactInfo | None:
        return self._sim.contacts.info.get(run.contact_id) if run.contact_id is not None else None

    async def contact_by_email(self, run: RunView, email: str) -> ContactInfo | None:
        return self._sim.contacts.by_email(email)

    async def address_listed(self, run: RunView, email: str) -> bool:
        # The account's unsubscribed list, as the real Email block reads it: a simulated
        # marketing letter to a listed address is refused with the same reason.
        return await self._sim.listed(email)

    async def fact(self, run: RunView, kind: str, arg: Any) -> bool:
        if kind == "eventOccurred":
            sim_run = self._sim.runs[run.run_id]
            return any(e.type == arg and e.id > run.event_id and _same_subject(sim_run, e)
                       for e in self._sim.events)
        if kind == "inSegment":
            # Stored membership, read live (as the unsubscribed list is).
            return run.contact_id is not None and await self._sim.member(int(arg),
                                                                         run.contact_id)
        return (run.contact_id in self._sim.contacts.info) == bool(arg)

    async def template(self, run: RunView, template_id: int) -> tuple[str, str, str]:
        return await self._sim.templates(template_id)

    async def deliver_email(self, run: RunView, block: dict[str, Any], letter: Letter,
                            contact_id: int | None, refused: str | None) -> Delivery:
        self._sim.messages.append({
            "runId": run.run_id, "seq": run.seq, "blockId": block["id"], "channel": "email",
            "to": letter.to, "subject": letter.subject, "html": letter.html, "text": letter.text,
            "messageId": letter.message_id, "contactId": contact_id,
            "status": "failed" if refused else "sent", "reason": refused,
            "at": self._sim.clock.isoformat()})
        return Delivery("failed", refused) if refused else Delivery("sent")

    async def post_webhook(self, run: RunView, block: dict[str, Any], url: str,
                           payload: dict[str, Any], key: str) -> Delivery:
        self._sim.messages.append({
            "runId": run.run_id, "seq": run.seq, "blockId": block["id"], "channel": "webhook",
            "to": url, "payload": payload, "idempotencyKey": key, "status": "sent",
            "at": self._sim.clock.isoformat()})
        return Delivery("sent")

    async def write_contact(self, run: RunView, *, create: bool, form: dict[str, Any]
                            ) -> int | None:
        return self._sim.contacts.write(create=create, form=form, run_contact_id=run.contact_id)

    async def launch_event(self, run: RunView, *, event_type_key: str, key_value: str,
                           params: list[dict[str, Any]]) -> int:
        # Refused as ingest would refuse it; simulated with the key ingest would store.
        event = await accept_launched(account_id=self._sim.account_id,
                                      event_type_key=event_type_key, key_value=key_value,
                                      params=params, using=self._sim.acceptance)
        return self._sim.add_event({"eventTypeKey": event_type_key,
                                    "keyValue": event.key_value, "params": params},
                                   self._sim.clock)


class Simulation:
    def __init__(self, d: Definition, *, templates: Templates, renderer: RenderPool,
                 sender: str, start: datetime, contacts: list[dict[str, Any]], account_id: int,
                 acceptance: Acceptance, listed: Listed = _nobody_listed,
                 member: Member = _no_member) -> None:
        self.d = d
        self.listed = listed
        self.member = member
        self.account_id = account_id
        self.acceptance = acceptance
        self.templates = templates
        self.renderer = renderer
        self.sender = sender
        self.clock = start
        self.contacts = SimContacts(contacts)
        self.events: list[SimEvent] = []
        self.runs: dict[int, SimRun] = {}
        self.steps: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self._queue: list[tuple[datetime, int, str, int]] = []
        self._order = itertools.count()
        self.rt = SimRuntime(self)

    def add_event(self, doc: dict[str, Any], at: datetime) -> int:
        pairs = [(p["name"], p.get("value")) for p in doc.get("params", []) if "name" in p]
        params = dict(pairs)
        ids = identifiers_from_params(pairs)
        contact_id = doc.get("contactId")
        notes: tuple[IdentityNote, ...] = ()
        if contact_id is None:
            contact_id, notes = self.contacts.link(ids)
        key = str(doc.get("keyValue") or ids.key_value() or "")
        ev = SimEvent(id=len(self.events) + 1, type=str(doc.get("eventTypeKey", "")), key=key,
                      params=params, contact_id=contact_id, at=at, notes=notes)
        self.events.append(ev)
        heapq.heappush(self._queue, (at, next(self._order), "event", ev.id))
        return ev.id

    def _log(self, run: SimRun, block: dict[str, Any], outcome: StepOutcome) -> None:
        self.steps.append({"runId": run.id, "seq": run.seq, "blockId": block.get("id"),
                           "type": block.get("type"), "status": outcome.status,
                           "next": outcome.next, "at": self.clock.isoformat(),
                           "detail": outcome.detail})

    def _on_event(self, ev: SimEvent) -> None:
        for run in self.runs.values():
            if (run.status == "waiting" and ev.type in self.d.stop_event_types
                    and _same_subject(run, ev)):
                self._stop(run, ev)
        if ev.type != self.d.event_type_key or not holds(self.d.conditions, params=ev.params):
            return
        if needs_history(self.d):
            prior = [PriorRun(contact_id=r.event.contact_id, key_value=r.event.key,
                              started_at=r.started_at, status=r.status)
                     for r in self.runs.values()]
            reason = refusal(self.d, contact_id=ev.contact_id, key_value=ev.key,
                             now=self.clock, prior=prior)
            if reason:
                self.steps.append({"eventId": ev.id, "status": "not started", "reason": reason,
                                   "at": self.clock.isoformat()})
                return
        run = SimRun(id=len(self.runs) + 1, event=ev, block=self.d.start, started_at=self.clock)
        self.runs[run.id] = run
        heapq.heappush(self._queue, (self.clock, next(self._order), "step", run.id))

    def _stop(self, run: SimRun, ev: SimEvent) -> None:
        self._log(run, self.d.blocks.get(run.block or "", {"id": run.block}),
                  StepOutcome("stopped", None, detail={"stopEventId": ev.id}))
        run.status, run.seq = "stopped", run.seq + 1

    async def _on_step(self, run: SimRun) -> None:
        if run.status not in ("running", "waiting"):
            return
        if run.status == "waiting" or run.seq == 1:
            stop = next((e for e in self.events if e.id > run.event.id and e.at <= self.clock
                         and e.type in self.d.stop_event_types and _same_subject(run, e)), None)
            if stop is not None:
                self._stop(run, stop)
                return
        block = self.d.blocks[run.block or self.d.start]
        outcome = await execute(block, run.view(), self.rt)
        self._log(run, block, outcome)
        run.seq += 1
        if outcome.status == "failed" or outcome.next is None:
            run.status, run.block = ("failed" if outcome.status == "failed" else "completed"), None
            return
        run.block = outcome.next
        run.status = "waiting" if outcome.wait_until else "running"
        at = max(outcome.wait_until or self.clock, self.clock)
        heapq.heappush(self._queue, (at, next(self._order), "step", run.id))

    async def run(self) -> dict[str, Any]:
        steps = 0
        while self._queue and steps < MAX_STEPS:
            at, _, kind, ident = heapq.heappop(self._queue)
            self.clock = max(self.clock, at)
            steps += 1
            if kind == "event":
                self._on_event(self.events[ident - 1])
            else:
                await self._on_step(self.runs[ident])
        return {
            "runs": [{"runId": r.id, "eventId": r.event.id, "contactId": r.event.contact_id,
                      "keyValue": r.event.key, "status": r.status,
                      "startedAt": r.started_at.isoformat()} for r in self.runs.values()],
            "steps": self.steps, "messages": self.messages,
            "events": [_event_doc(e) for e in self.events],
            "truncated": bool(self._queue),
        }


def _event_doc(ev: SimEvent) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": ev.id, "eventTypeKey": ev.type, "keyValue": ev.key,
                           "contactId": ev.contact_id, "at": ev.at.isoformat()}
    if ev.notes:
        doc["identityNotes"] = [note.to_json() for note in ev.notes]
    return doc


def _when(raw: Any, start: datetime, where: str) -> datetime:
    if raw is None:
        return start
    try:
        if isinstance(raw, str) and raw.upper().startswith("P"):
            return start + parse_duration(raw)
        moment = datetime.fromisoformat(str(raw))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidArgument.from_violations([Violation(
            f"{where}.at", f"{raw!r} is neither an offset such as PT10M nor an ISO time")]) from None


async def simulate(*, definition: Any, events: Any, contacts: Any = None, templates: Templates,
                   renderer: RenderPool, sender: str, account_id: int, acceptance: Acceptance,
                   start: datetime | None = None, listed: Listed = _nobody_listed,
                   member: Member = _no_member) -> dict[str, Any]:
    """Run ``definition`` over ``events`` for ``account_id``; the result lists runs, steps
    and messages. Launched events are accepted through ``acceptance`` as ingest would;
    ``listed`` answers whether an address is on the account's unsubscribed list and
    ``member`` whether a contact is a stored member of a segment (``inSegment``)."""
    d = parse_definition(definition)
    refuse_segment_trigger(d.event_type_key)
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise InvalidArgument.from_violations([Violation(
            "events", f"must be a list of at most {MAX_EVENTS} events")])
    begin = start or datetime.now(UTC).replace(microsecond=0)
    sim = Simulation(d, templates=templates, renderer=renderer, sender=sender, start=begin,
                     contacts=contacts if isinstance(contacts, list) else [],
                     account_id=account_id, acceptance=acceptance, listed=listed,
                     member=member)
    for i, ev in enumerate(events):
        if not isinstance(ev, dict) or not isinstance(ev.get("eventTypeKey"), str):
            raise InvalidArgument.from_violations([Violation(
                f"events[{i}]", "must be an event with eventTypeKey, keyValue and params")])
        sim.add_event(ev, _when(ev.get("at"), begin, f"events[{i}]"))
    return await sim.run()
