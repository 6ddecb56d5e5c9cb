"""Read-side queries for the API: runs, a run's step log, and messages by run/contact/workflow."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.models import id_is, table_of
from server.errors import NotFound
from server.workflows.models import WorkflowMessageRow, WorkflowRunRow, WorkflowStepRow

_runs = table_of(WorkflowRunRow)
_steps = table_of(WorkflowStepRow)
_msgs = table_of(WorkflowMessageRow)
MAX_PAGE = 500


def _page(size: int) -> int:
    return MAX_PAGE if size <= 0 else min(size, MAX_PAGE)


async def list_runs(conn: AsyncConnection, *, account_id: int, workflow_id: int = 0,
                    contact_id: int = 0, status: str = "", page_size: int = 0,
                    before_id: int = 0) -> list[Any]:
    where = [_runs.c.account_id == account_id]
    if workflow_id:
        where.append(id_is(_runs.c.workflow_id, workflow_id))
    if contact_id:
        where.append(_runs.c.contact_id == contact_id)
    if status:
        where.append(_runs.c.status == status)
    if before_id:
        where.append(_runs.c.id < before_id)
    return list((await conn.execute(select(_runs).where(and_(*where))
                                    .order_by(_runs.c.id.desc()).limit(_page(page_size)))).all())


async def get_run(conn: AsyncConnection, *, account_id: int, run_id: int) -> Any:
    row = (await conn.execute(select(_runs).where(and_(
        _runs.c.account_id == account_id, _runs.c.id == run_id)))).first()
    if row is None:
        raise NotFound(f"no workflow run with id {run_id} in this account")
    return row


async def list_steps(conn: AsyncConnection, *, account_id: int, run_id: int) -> list[Any]:
    return list((await conn.execute(select(_steps).where(and_(
        _steps.c.account_id == account_id, _steps.c.run_id == run_id))
        .order_by(_steps.c.seq))).all())


async def list_messages(conn: AsyncConnection, *, account_id: int, run_id: int = 0,
                        contact_id: int = 0, workflow_id: int = 0, page_size: int = 0,
                        before_id: int = 0) -> list[Any]:
    where = [_msgs.c.account_id == account_id]
    if run_id:
        where.append(_msgs.c.run_id == run_id)
    if contact_id:
        where.append(_msgs.c.contact_id == contact_id)
    if workflow_id:
        where.append(id_is(_msgs.c.workflow_id, workflow_id))
    if before_id:
        where.append(_msgs.c.id < before_id)
    return list((await conn.execute(select(*_LISTED).where(and_(*where))
                                    .order_by(_msgs.c.id.desc()).limit(_page(page_size)))).all())


# A listing's columns: every one but the bodies (up to megabytes each).
_LISTED = [c for c in _msgs.c if c.name not in ("body_html", "body_text")]


async def get_message(conn: AsyncConnection, *, account_id: int, message_id: int) -> Any:
    """One record with what it sent; NotFound outside the account."""
    row = (await conn.execute(select(_msgs).where(and_(
        id_is(_msgs.c.id, message_id), _msgs.c.account_id == account_id)))).first()
    if row is None:
        raise NotFound(f"no sent message with id {message_id} in this account")
    return row
