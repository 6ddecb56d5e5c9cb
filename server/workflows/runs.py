"""Run rows in the database: create, lock, advance with the step record, stop, and the
queries the trigger policies and stop checks need. Every write happens inside the
caller's transaction, so a step's effects and its record commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.dialect import insert_ids, lock_rows
from server.db.models import Event, EventType, as_utc, table_of, utcnow
from server.workflows.models import WorkflowRunRow, WorkflowStepRow
from server.workflows.policy import PriorRun
from server.workflows.runtime import RunView, StepOutcome

_runs = table_of(WorkflowRunRow)
_steps = table_of(WorkflowStepRow)
_events = table_of(Event)
_types = table_of(EventType)
ACTIVE = ("running", "waiting")


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    account_id: int
    workflow_id: int
    version: int
    event_id: int
    contact_id: int | None
    key_value: str
    status: str
    current_block: str | None
    step_seq: int
    trigger: dict[str, Any]
    started_at: datetime
    # Tries of this step so far that asked to be retried later.
    tries: int = 0

    def view(self) -> RunView:
        params = {p["name"]: p.get("value") for p in self.trigger.get("params", [])}
        return RunView(run_id=self.id, account_id=self.account_id, workflow_id=self.workflow_id,
                       event_id=self.event_id, contact_id=self.contact_id,
                       event_type_key=self.trigger.get("eventTypeKey", ""),
                       key_value=self.key_value, params=params, started_at=self.started_at,
                       seq=self.step_seq)


def row_of(r: Any) -> RunRow:
    """A ``workflow_runs`` row as a ``RunRow``."""
    return RunRow(id=int(r.id), account_id=int(r.account_id), workflow_id=int(r.workflow_id),
                  version=int(r.version), event_id=int(r.event_id),
                  contact_id=None if r.contact_id is None else int(r.contact_id),
                  key_value=r.key_value, status=r.status, current_block=r.current_block,
                  step_seq=int(r.step_seq), trigger=orjson.loads(r.trigger),
                  started_at=as_utc(r.started_at), tries=int(r.tries or 0))


async def load_run(conn: AsyncConnection, run_id: int, *, lock: bool = False) -> RunRow | None:
    """The run; with ``lock`` the row is locked until the transaction ends."""
    query = select(_runs).where(_runs.c.id == run_id)
    if lock:  # two workers cannot both advance the run
        r = (await lock_rows(conn, query, table=_runs, where=_runs.c.id == run_id)).first()
    else:
        r = (await conn.execute(query)).first()
    return None if r is None else row_of(r)


def _status_after(outcome: StepOutcome) -> tuple[str, str | None]:
    if outcome.status == "failed":
        return "failed", str(outcome.detail.get("reason", "the step failed"))
    if outcome.next is None:
        return "completed", None
    return ("waiting" if outcome.wait_until else "running"), None


_advance = update(_runs).where(_runs.c.id == bindparam("b_id")).values(
    status=bindparam("b_status"), current_block=bindparam("b_block"),
    step_seq=bindparam("b_seq"), due_at=bindparam("b_due"), error=bindparam("b_error"),
    updated_at=bindparam("b_now"), finished_at=bindparam("b_finished"), claimed_by=None,
    claimed_until=None, tries=0)


async def record_steps(conn: AsyncConnection, done: list[tuple[RunRow, dict[str, Any],
                                                             StepOutcome]], *, worker: str
                       ) -> list[str]:
    """Insert the steps and move their runs on (one statement each for all of them, inside
    the caller's transaction, the runs locked by it); the runs' new statuses, in order."""
    if not done:
        return []
    now = utcnow()
    await conn.execute(insert(_steps), [{
        "account_id": run.account_id, "run_id": run.id, "seq": run.step_seq,
        "block_id": block["id"], "block_type": block["type"], "status": outcome.status,
        "outcome": outcome.next, "detail": orjson.dumps(outcome.detail).decode(),
        "worker": worker, "finished_at": now} for run, block, outcome in done])
    statuses: list[str] = []
    moves: list[dict[str, Any]] = []
    for run, _block, outcome in done:
        status, error = _status_after(outcome)
        end = status in ("failed", "completed")
        statuses.append(status)
        moves.append({"b_id": run.id, "b_status": status,
                      "b_block": None if end else outcome.next, "b_seq": run.step_seq + 1,
                      "b_due": None if end else (outcome.wait_until or now),
                      "b_error": error, "b_now": now, "b_finished": now if end else None})
    await conn.execute(_advance, moves)
    return statuses


async def retry_later(conn: AsyncConnection, run: RunRow, *, due: datetime, reason: str
                      ) -> None:
    """The step asked to be tried again: at ``due``, one try more, claim let go."""
    await conn.execute(update(_runs).where(_runs.c.id == run.id).values(
        due_at=due, tries=_runs.c.tries + 1, error=reason[:2000], updated_at=utcnow(),
        claimed_by=None, claimed_until=None))


async def lock_runs(conn: AsyncConnection, run_ids: list[int]) -> dict[int, tuple[int, str]]:
    """Lock these runs until the transaction ends (two workers cannot both advance one);
    each one's (step seq, status) now."""
    where = _runs.c.id.in_(run_ids)
    rows = (await lock_rows(conn, select(_runs.c.id, _runs.c.step_seq, _runs.c.status)
                            .where(where).order_by(_runs.c.id),
                            table=_runs, where=where)).all()
    return {int(r.id): (int(r.step_seq), str(r.status)) for r in rows}


async def stop_run(conn: AsyncConnection, run: RunRow, *, block_type: str, reason: str,
                   stop_event_id: int | None, worker: str) -> None:
    """End the run as stopped; the step log says which event stopped it."""
    now = utcnow()
    await conn.execute(insert(_steps).values(
        account_id=run.account_id, run_id=run.id, seq=run.step_seq,
        block_id=run.current_block or "", block_type=block_type, status="stopped", outcome=None,
        detail=orjson.dumps({"reason": reason, "stopEventId": stop_event_id}).decode(),
        worker=worker, finished_at=now))
    await conn.execute(update(_runs).where(_runs.c.id == run.id).values(
        status="stopped", step_seq=run.step_seq + 1, due_at=None, error=reason,
        updated_at=now, finished_at=now, claimed_by=None, claimed_until=None))


def _same_subject(run: RunRow) -> Any:
    """Events of the run's contact (by contact id), else with the run's event key."""
    by_key = _events.c.key_value == run.key_value
    if run.contact_id is None:
        return by_key
    return or_(_events.c.contact_id == run.contact_id,
               and_(_events.c.contact_id.is_(None), by_key))


async def event_since(conn: AsyncConnection, run: RunRow, type_keys: tuple[str, ...]
                      ) -> int | None:
    """The first event of these types for the run's contact/key after the run's trigger."""
    if not type_keys:
        return None
    found = (await conn.execute(
        select(_events.c.id).join(_types, _types.c.id == _events.c.event_type_id)
        .where(and_(_events.c.account_id == run.account_id, _types.c.key.in_(type_keys),
                    _events.c.id > run.event_id, _events.c.is_past.is_(False),
                    _same_subject(run)))
        .order_by(_events.c.id).limit(1))).scalar()
    return None if found is None else int(found)


async def first_events_since(conn: AsyncConnection, wanted: list[tuple[RunRow, tuple[str, ...]]]
                             ) -> dict[int, int]:
    """``event_since`` for many runs: run id -> the first such event, for the runs that
    have one (one query per account)."""
    out: dict[int, int] = {}
    by_account: dict[int, list[tuple[RunRow, tuple[str, ...]]]] = {}
    for run, types in wanted:
        if types:
            by_account.setdefault(run.account_id, []).append((run, types))
    for account_id, items in by_account.items():
        contact_ids = sorted({r.contact_id for r, _t in items if r.contact_id is not None})
        keys = sorted({r.key_value for r, _t in items})
        subject: ColumnElement[bool] = _events.c.key_value.in_(keys)
        if contact_ids:
            subject = or_(_events.c.contact_id.in_(contact_ids), subject)
        rows = (await conn.execute(
            select(_events.c.id, _events.c.contact_id, _events.c.key_value, _types.c.key)
            .join(_types, _types.c.id == _events.c.event_type_id)
            .where(and_(_events.c.account_id == account_id,
                        _types.c.key.in_(sorted({k for _r, t in items for k in t})),
                        _events.c.id > min(r.event_id for r, _t in items),
                        _events.c.is_past.is_(False), subject))
            .order_by(_events.c.id))).all()
        for run, types in items:
            for e in rows:
                if e.id > run.event_id and e.key in types and _is_same_subject(run, e):
                    out[run.id] = int(e.id)
                    break
    return out


def _is_same_subject(run: RunRow, event: Any) -> bool:
    """``_same_subject`` in Python, for an event row read for several runs."""
    if run.contact_id is None:
        return bool(event.key_value == run.key_value)
    return event.contact_id == run.contact_id or (
        event.contact_id is None and event.key_value == run.key_value)


# The batch forms: one query or statement for a whole batch of events.

async def insert_runs(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert runs (account_id, workflow_id, version, event_id, contact_id, key_value, start,
    trigger each) in one statement; their ids, in order."""
    if not rows:
        return []
    now = utcnow()
    values = [{"account_id": r["account_id"], "workflow_id": r["workflow_id"],
               "version": r["version"], "event_id": r["event_id"], "contact_id": r["contact_id"],
               "key_value": r["key_value"], "status": "running", "current_block": r["start"],
               "step_seq": 1, "due_at": now, "trigger": orjson.dumps(r["trigger"]).decode(),
               "started_at": now, "updated_at": now} for r in rows]
    return await insert_ids(conn, _runs, values)


def _subjects(contact_ids: set[int], keys: set[str]) -> Any:
    by_key = _runs.c.key_value.in_(sorted(keys))
    if contact_ids:
        return or_(_runs.c.contact_id.in_(sorted(contact_ids)), by_key)
    return by_key


async def waiting_runs_of(conn: AsyncConnection, *, account_id: int, contact_ids: set[int],
                          keys: set[str]) -> list[RunRow]:
    """Runs waiting in a timer for any of these contacts or keys (the caller matches each
    event with ``is_subject``)."""
    rows = (await conn.execute(select(_runs).where(and_(
        _runs.c.account_id == account_id, _runs.c.status == "waiting",
        _subjects(contact_ids, keys))).order_by(_runs.c.id))).all()
    return [row_of(r) for r in rows]


def is_subject(run: RunRow, *, contact_id: int | None, key_value: str) -> bool:
    """Whether a waiting run is about this contact (else, without contact ids, this key)."""
    if run.contact_id is not None and contact_id is not None:
        return run.contact_id == contact_id
    return run.key_value == key_value


async def prior_runs_of(conn: AsyncConnection, *, workflow_ids: set[int], contact_ids: set[int],
                        keys: set[str]) -> dict[int, list[PriorRun]]:
    """Runs of these workflows for these contacts or keys, by workflow id: what the start
    policies decide over."""
    out: dict[int, list[PriorRun]] = {wf: [] for wf in workflow_ids}
    if not workflow_ids:
        return out
    rows = (await conn.execute(select(_runs.c.workflow_id, _runs.c.contact_id, _runs.c.key_value,
                                      _runs.c.started_at, _runs.c.status)
                               .where(and_(_runs.c.workflow_id.in_(sorted(workflow_ids)),
                                           _subjects(contact_ids, keys))))).all()
    for r in rows:
        out[int(r.workflow_id)].append(PriorRun(
            contact_id=None if r.contact_id is None else int(r.contact_id),
            key_value=r.key_value, started_at=as_utc(r.started_at), status=r.status))
    return out
