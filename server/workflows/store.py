"""Stored workflow definitions: create, update (a new version each time), read, list,
activate and deactivate; and the per-event lookup of active workflows by trigger type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.models import as_utc, id_is, table_of, utcnow
from server.errors import InvalidArgument, NotFound, Violation
from server.templating.store import missing_templates
from server.workflows.blocks.email import EMAIL_BLOCKS
from server.workflows.definition import Definition, parse_definition
from server.workflows.models import WorkflowRow, WorkflowVersionRow
from server.workflows.segments import check_segments

_wf = table_of(WorkflowRow)
_ver = table_of(WorkflowVersionRow)
# Keyed by database too: one process may serve several databases (tests do).
_CACHE: dict[tuple[str, int, int], Definition] = {}
_CACHE_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class StoredWorkflow:
    id: int
    name: str
    active: bool
    version: int
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


async def _check_templates(conn: AsyncConnection, *, account_id: int, d: Definition) -> None:
    """Refuses, when it is saved, a definition whose email blocks name a template this
    account does not have (it failed only when a run reached the block)."""
    wanted: dict[int, list[int]] = {}
    for index, block in enumerate(d.doc.get("blocks") or []):
        if not isinstance(block, dict) or block.get("type") not in EMAIL_BLOCKS:
            continue
        tid = block.get("templateId")
        if isinstance(tid, int):
            wanted.setdefault(tid, []).append(index)
    missing = await missing_templates(conn, account_id=account_id, template_ids=set(wanted))
    if missing:
        raise InvalidArgument.from_violations([
            Violation(f"blocks[{index}].templateId",
                      f"no message template with id {tid} in this account")
            for tid in sorted(missing) for index in wanted[tid]])


async def create_workflow(conn: AsyncConnection, *, account_id: int, doc: Any) -> StoredWorkflow:
    d = parse_definition(doc)
    await _check_templates(conn, account_id=account_id, d=d)
    await check_segments(conn, account_id=account_id, doc=d.doc)
    now = utcnow()
    wf_id = int((await conn.execute(insert(_wf).values(
        account_id=account_id, name=d.name, active=d.active, version=1,
        event_type_key=d.event_type_key, created_at=now, updated_at=now,
    ).returning(_wf.c.id))).scalar_one())
    await conn.execute(insert(_ver).values(workflow_id=wf_id, account_id=account_id, version=1,
                                           definition=orjson.dumps(d.doc).decode(),
                                           created_at=now))
    return await get_workflow(conn, account_id=account_id, workflow_id=wf_id)


async def update_workflow(conn: AsyncConnection, *, account_id: int, workflow_id: int,
                          doc: Any) -> StoredWorkflow:
    """A new version; runs already started keep the version they started on."""
    d = parse_definition(doc)
    current = await get_workflow(conn, account_id=account_id, workflow_id=workflow_id)
    await _check_templates(conn, account_id=account_id, d=d)
    await check_segments(conn, account_id=account_id, doc=d.doc)
    version = current.version + 1
    now = utcnow()
    await conn.execute(insert(_ver).values(workflow_id=workflow_id, account_id=account_id,
                                           version=version, definition=orjson.dumps(d.doc).decode(),
                                           created_at=now))
    await conn.execute(update(_wf).where(_wf.c.id == workflow_id).values(
        name=d.name, active=d.active, version=version, event_type_key=d.event_type_key,
        updated_at=now))
    return await get_workflow(conn, account_id=account_id, workflow_id=workflow_id)


async def set_active(conn: AsyncConnection, *, account_id: int, workflow_id: int,
                     active: bool) -> StoredWorkflow:
    await get_workflow(conn, account_id=account_id, workflow_id=workflow_id)
    await conn.execute(update(_wf).where(_wf.c.id == workflow_id)
                       .values(active=active, updated_at=utcnow()))
    return await get_workflow(conn, account_id=account_id, workflow_id=workflow_id)


def _stored(row: Any, definition: str) -> StoredWorkflow:
    doc = orjson.loads(definition)
    doc["active"] = bool(row.active)
    return StoredWorkflow(id=int(row.id), name=row.name, active=bool(row.active),
                          version=int(row.version), definition=doc,
                          created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at))


async def get_workflow(conn: AsyncConnection, *, account_id: int, workflow_id: int
                       ) -> StoredWorkflow:
    row = (await conn.execute(
        select(_wf, _ver.c.definition)
        .join(_ver, and_(_ver.c.workflow_id == _wf.c.id, _ver.c.version == _wf.c.version))
        .where(and_(id_is(_wf.c.id, workflow_id), _wf.c.account_id == account_id)))).first()
    if row is None:
        raise NotFound(f"no workflow with id {workflow_id} in this account")
    return _stored(row, row.definition)


async def list_workflows(conn: AsyncConnection, *, account_id: int) -> list[StoredWorkflow]:
    rows = (await conn.execute(
        select(_wf, _ver.c.definition)
        .join(_ver, and_(_ver.c.workflow_id == _wf.c.id, _ver.c.version == _wf.c.version))
        .where(_wf.c.account_id == account_id).order_by(_wf.c.id))).all()
    return [_stored(r, r.definition) for r in rows]


async def any_active(conn: AsyncConnection) -> bool:
    """Whether any account has an active workflow (the workers' step pumps: whether to start
    their render processes)."""
    found = (await conn.execute(select(_wf.c.id).where(_wf.c.active.is_(True)).limit(1))).first()
    return found is not None


async def load_version(conn: AsyncConnection, *, workflow_id: int, version: int) -> Definition:
    """A version's definition (immutable, so cached per process)."""
    key = (str(conn.engine.url), workflow_id, version)
    found = _CACHE.get(key)
    if found is not None:
        return found
    text = (await conn.execute(select(_ver.c.definition).where(and_(
        _ver.c.workflow_id == workflow_id, _ver.c.version == version)))).scalar_one()
    definition = parse_definition(orjson.loads(text))
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[key] = definition
    return definition


async def active_for_event(conn: AsyncConnection, *, account_id: int, event_type_key: str
                           ) -> list[tuple[int, int, Definition]]:
    """(workflow id, version, definition) of active workflows started by this event type."""
    rows = (await conn.execute(select(_wf.c.id, _wf.c.version).where(and_(
        _wf.c.account_id == account_id, _wf.c.event_type_key == event_type_key,
        _wf.c.active.is_(True))).order_by(_wf.c.id))).all()
    return [(int(r.id), int(r.version),
             await load_version(conn, workflow_id=int(r.id), version=int(r.version)))
            for r in rows]
