"""Workflow views the console needs beyond the workflow API: versions, runs of an event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.db.models import as_utc, table_of
from server.workflows import store
from server.workflows.models import WorkflowRunRow, WorkflowVersionRow

_ver = table_of(WorkflowVersionRow)
_runs = table_of(WorkflowRunRow)


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    definition: dict[str, Any]
    created_at: datetime


async def versions(engine: AsyncEngine, *, account_id: int, workflow_id: int
                   ) -> tuple[store.StoredWorkflow, list[Version]]:
    """The workflow (NotFound outside the account) and its versions, newest first."""
    async with engine.connect() as conn:
        current = await store.get_workflow(conn, account_id=account_id, workflow_id=workflow_id)
        rows = (await conn.execute(
            select(_ver.c.version, _ver.c.definition, _ver.c.created_at)
            .where(and_(_ver.c.workflow_id == workflow_id, _ver.c.account_id == account_id))
            .order_by(_ver.c.version.desc()))).all()
    return current, [Version(int(v), orjson.loads(d), as_utc(c)) for v, d, c in rows]


async def runs_of_event(engine: AsyncEngine, *, account_id: int, event_id: int) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(
            select(_runs).where(and_(_runs.c.account_id == account_id,
                                     _runs.c.event_id == event_id))
            .order_by(_runs.c.id))).all())


async def triggered_by(engine: AsyncEngine, *, account_id: int, event_type_key: str
                       ) -> list[store.StoredWorkflow]:
    async with engine.connect() as conn:
        found = await store.list_workflows(conn, account_id=account_id)
    return [w for w in found
            if (w.definition.get("trigger") or {}).get("eventTypeKey") == event_type_key]
