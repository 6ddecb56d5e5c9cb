"""What dispatched events do to workflows, inside their batch's transaction: each stops the
waiting runs it is a stop event for, then starts a run of every active workflow it
triggers whose conditions, unique policy and "skip if running" allow it. ``handle_batch``
is the one path (a whole batch, set-based); one event is a batch of one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.models import table_of, utcnow
from server.workflows import runs, store
from server.workflows.conditions import holds
from server.workflows.definition import Definition
from server.workflows.models import WorkflowRow, WorkflowVersionRow
from server.workflows.policy import PriorRun, needs_history, refusal

log = logging.getLogger(__name__)
_wf = table_of(WorkflowRow)
_ver = table_of(WorkflowVersionRow)


@dataclass(slots=True)
class TriggerResult:
    started: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BatchEvent:
    id: int
    event_type_key: str
    key_value: str
    params: list[tuple[str, Any]]
    contact_id: int | None


@dataclass(frozen=True, slots=True)
class AccountWorkflows:
    """An account's active workflows by trigger type, and every stop type of any version
    (a waiting run keeps the version it started on)."""

    stamp: tuple[Any, ...]
    triggers: dict[str, list[tuple[int, int, Definition]]]
    stop_types: frozenset[str]


# (database, account) -> what the account's workflows are, checked against a stamp of the
# workflows table each batch, so a change in any process is seen by the next batch.
_ACCOUNTS: dict[tuple[str, int], AccountWorkflows] = {}
_ACCOUNTS_LIMIT = 10000


async def account_workflows(conn: AsyncConnection, account_id: int) -> AccountWorkflows:
    """The account's workflows as the batch path needs them (cached, see ``_ACCOUNTS``)."""
    stamp = tuple((await conn.execute(
        select(func.count(_wf.c.id), func.sum(_wf.c.version), func.max(_wf.c.updated_at))
        .where(_wf.c.account_id == account_id))).one())
    key = (str(conn.engine.url), account_id)
    cached = _ACCOUNTS.get(key)
    if cached is not None and cached.stamp == stamp:
        return cached
    triggers: dict[str, list[tuple[int, int, Definition]]] = {}
    for r in (await conn.execute(select(_wf.c.id, _wf.c.version, _wf.c.event_type_key).where(
            and_(_wf.c.account_id == account_id, _wf.c.active.is_(True)))
            .order_by(_wf.c.id))).all():
        d = await store.load_version(conn, workflow_id=int(r.id), version=int(r.version))
        triggers.setdefault(d.event_type_key, []).append((int(r.id), int(r.version), d))
    stops: set[str] = set()
    for v in (await conn.execute(select(_ver.c.workflow_id, _ver.c.version)
                                 .where(_ver.c.account_id == account_id))).all():
        d = await store.load_version(conn, workflow_id=int(v.workflow_id), version=int(v.version))
        stops.update(d.stop_event_types)
    found = AccountWorkflows(stamp=stamp, triggers=triggers, stop_types=frozenset(stops))
    if len(_ACCOUNTS) >= _ACCOUNTS_LIMIT:
        _ACCOUNTS.clear()
    _ACCOUNTS[key] = found
    return found


async def handle_batch(conn: AsyncConnection, *, account_id: int, events: list[BatchEvent],
                       worker: str = "") -> TriggerResult:
    """What a batch of one account's events (in id order) does, in one transaction with a
    handful of queries for the whole batch: each event stops the waiting runs it is a
    stop event for, then starts the runs it triggers. The account's lease keeps its events
    to one worker at a time, so the batch decides policies over what it reads plus the runs
    it starts itself."""
    out = TriggerResult()
    aw = await account_workflows(conn, account_id)
    relevant = [e for e in events
                if e.event_type_key in aw.triggers or e.event_type_key in aw.stop_types]
    if not relevant:
        return out
    contact_ids = {e.contact_id for e in relevant if e.contact_id is not None}
    keys = {e.key_value for e in relevant}
    waiting: list[runs.RunRow] = []
    if any(e.event_type_key in aw.stop_types for e in relevant):
        waiting = await runs.waiting_runs_of(conn, account_id=account_id,
                                             contact_ids=contact_ids, keys=keys)
    history = {wf_id for e in relevant for wf_id, _v, d in aw.triggers.get(e.event_type_key, ())
               if needs_history(d)}
    prior = await runs.prior_runs_of(conn, workflow_ids=history, contact_ids=contact_ids,
                                     keys=keys)
    stopped: set[int] = set()
    starts: list[dict[str, Any]] = []
    now = utcnow()
    for event in relevant:
        if event.event_type_key in aw.stop_types:
            for run in waiting:
                if run.id in stopped or not runs.is_subject(
                        run, contact_id=event.contact_id, key_value=event.key_value):
                    continue
                definition = await store.load_version(conn, workflow_id=run.workflow_id,
                                                      version=run.version)
                if event.event_type_key in definition.stop_event_types:
                    block = definition.blocks.get(run.current_block or "", {})
                    await runs.stop_run(conn, run, block_type=str(block.get("type", "")),
                                        reason=f"stop event {event.event_type_key} ({event.id})",
                                        stop_event_id=event.id, worker=worker)
                    stopped.add(run.id)
                    out.stopped.append(run.id)
        params = dict(event.params)
        for wf_id, version, d in aw.triggers.get(event.event_type_key, ()):
            if not holds(d.conditions, params=params):
                out.skipped.append((wf_id, "conditions"))
                continue
            if wf_id in prior:
                reason = refusal(d, contact_id=event.contact_id, key_value=event.key_value,
                                 now=now, prior=prior[wf_id])
                if reason:
                    out.skipped.append((wf_id, reason))
                    continue
                prior[wf_id].append(PriorRun(contact_id=event.contact_id,
                                             key_value=event.key_value, started_at=now,
                                             status="running"))
            starts.append({
                "account_id": account_id, "workflow_id": wf_id, "version": version,
                "event_id": event.id, "contact_id": event.contact_id,
                "key_value": event.key_value, "start": d.start,
                "trigger": {"eventTypeKey": event.event_type_key, "keyValue": event.key_value,
                            "params": [{"name": n, "value": v} for n, v in event.params]}})
    out.started = await runs.insert_runs(conn, starts)
    return out
