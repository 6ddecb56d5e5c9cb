"""Run rows in the database: create, lock, advance with the step record, stop, and the
queries the trigger policies and stop checks need. Every write happens inside the
caller's transaction, so a step's effects and its record commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.dialect import lock_rows
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

    def view(self) -> RunView:
        params = {p["name"]: p.get("value") for p in self.trigger.get("params", [])}
        return RunView(run_id=self.id, account_id=self.account_id, workflow_id=self.workflow_id,
                       event_id=self.event_id, contact_id=self.contact_id,
                       event_type_key=self.trigger.get("eventTypeKey", ""),
                       key_value=self.key_value, params=params, started_at=self.started_at,
                       seq=self.step_seq)


def _row(r: Any) -> RunRow:
    return RunRow(id=int(r.id), account_id=int(r.account_id), workflow_id=int(r.workflow_id),
                  version=int(r.version), event_id=int(r.event_id),
                  contact_id=None if r.contact_id is None else int(r.contact_id),
                  key_value=r.key_value, status=r.status, current_block=r.current_block,
                  step_seq=int(r.step_seq), trigger=orjson.loads(r.trigger),
                  started_at=as_utc(r.started_at))


async def load_run(conn: AsyncConnection, run_id: int, *, lock: bool = False) -> RunRow | None:
    """The run; with ``lock`` the row is locked until the transaction ends."""
    query = select(_runs).where(_runs.c.id == run_id)
    if lock:  # two workers cannot both advance the run
        r = (await lock_rows(conn, query, table=_runs, where=_runs.c.id == run_id)).first()
    else:
        r = (await conn.execute(query)).first()
    return None if r is None else _row(r)


async def record_step(conn: AsyncConnection, run: RunRow, *, block: dict[str, Any],
                      outcome: StepOutcome, worker: str) -> str:
    """Insert the step and move the run on; returns the run's new status."""
    now = utcnow()
    await conn.execute(insert(_steps).values(
        account_id=run.account_id, run_id=run.id, seq=run.step_seq, block_id=block["id"],
        block_type=block["type"], status=outcome.status, outcome=outcome.next,
        detail=orjson.dumps(outcome.detail).decode(), worker=worker, finished_at=now))
    if outcome.status == "failed":
        status, error = "failed", str(outcome.detail.get("reason", "the step failed"))
    elif outcome.next is None:
        status, error = "completed", None
    else:
        status, error = ("waiting" if outcome.wait_until else "running"), None
    done = status in ("failed", "completed")
    await conn.execute(update(_runs).where(_runs.c.id == run.id).values(
        status=status, current_block=None if done else outcome.next,
        step_seq=run.step_seq + 1, due_at=None if done else (outcome.wait_until or now),
        error=error, updated_at=now, finished_at=now if done else None))
    return status


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
        updated_at=now, finished_at=now))


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


async def due_runs(conn: AsyncConnection, *, before: datetime, limit: int = 500
                   ) -> list[tuple[int, int, datetime | None]]:
    """(run id, step seq, due) of active runs whose next step should have run by ``before``."""
    rows = (await conn.execute(select(_runs.c.id, _runs.c.step_seq, _runs.c.due_at).where(and_(
        _runs.c.status.in_(ACTIVE), _runs.c.due_at < before)).order_by(_runs.c.due_at)
        .limit(limit))).all()
    return [(int(r.id), int(r.step_seq), r.due_at) for r in rows]


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
    result = await conn.execute(insert(_runs).returning(_runs.c.id, sort_by_parameter_order=True),
                                values)
    return [int(r[0]) for r in result.all()]


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
    return [_row(r) for r in rows]


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
