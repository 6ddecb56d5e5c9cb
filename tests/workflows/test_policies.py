"""Stop events, unique policies and "skip if running" on the real engine."""

from __future__ import annotations

from typing import Any

from tests.support import Stack
from tests.workflows.conftest import create_workflow, eventually, runs_of, unique_key


def _event(kind: str, key: str, **params: Any) -> dict[str, Any]:
    return {"eventTypeKey": kind, "keyValue": key,
            "params": [{"name": k, "value": v} for k, v in params.items()]}


def _waiting_flow(trigger: dict[str, Any], *, stop: list[str] | None = None) -> dict[str, Any]:
    return {"name": unique_key("flow"), "active": True, "trigger": trigger,
            "stop": {"eventTypeKeys": stop or []}, "start": "wait",
            "blocks": [{"id": "wait", "type": "timer", "duration": "PT1H", "next": "end"},
                       {"id": "end", "type": "end"}]}


async def _statuses(s: Stack, wid: int) -> list[str]:
    return sorted(r["status"] for r in await runs_of(s, wid))


async def test_stop_event_ends_a_waiting_run(wf: Stack) -> None:
    """A stop event with the run's key ends the run waiting in its timer."""
    kind = unique_key("cart")
    wid = await create_workflow(wf, _waiting_flow({"eventTypeKey": kind}, stop=["purchase"]))
    key = unique_key("buyer")
    await wf.post_event(_event(kind, key))
    await eventually(lambda: _is(wf, wid, ["waiting"]))
    await wf.post_event(_event("purchase", unique_key("someone-else")))
    await wf.post_event(_event("purchase", key))
    await eventually(lambda: _is(wf, wid, ["stopped"]))
    (run,) = await runs_of(wf, wid)
    steps = (await wf.http.get(f"/api/v1/workflow-runs/{run['id']}", headers=wf.auth())).json()
    assert [s["status"] for s in steps["steps"]] == ["done", "stopped"]


async def test_once_starts_one_run_per_key(wf: Stack) -> None:
    """unique "once" by key: the second event with the same key starts nothing."""
    kind = unique_key("signup")
    wid = await create_workflow(wf, {
        "name": "once", "active": True,
        "trigger": {"eventTypeKey": kind, "unique": "once", "uniqueBy": "key"},
        "start": "end", "blocks": [{"id": "end", "type": "end"}]})
    key = unique_key("k")
    for _ in range(3):
        await wf.post_event(_event(kind, key))
    await wf.post_event(_event(kind, unique_key("other")))
    await eventually(lambda: _is(wf, wid, ["completed", "completed"]))
    await _settle(wf)
    assert await _statuses(wf, wid) == ["completed", "completed"]


async def test_skip_if_running_holds_while_a_run_waits(wf: Stack) -> None:
    """skipIfRunning: no second run while the first waits; conditions filter events."""
    kind = unique_key("visit")
    wid = await create_workflow(wf, _waiting_flow({
        "eventTypeKey": kind, "skipIfRunning": True,
        "conditions": [{"param": "page", "operator": "startsWith", "value": "/shop"}]}))
    key = unique_key("v")
    await wf.post_event(_event(kind, key, page="/blog"))
    await wf.post_event(_event(kind, key, page="/shop/1"))
    await eventually(lambda: _is(wf, wid, ["waiting"]))
    await wf.post_event(_event(kind, key, page="/shop/2"))
    await _settle(wf)
    assert await _statuses(wf, wid) == ["waiting"]


async def _is(s: Stack, wid: int, statuses: list[str]) -> bool:
    return await _statuses(s, wid) == sorted(statuses)


async def _settle(s: Stack) -> None:
    """Wait until every event so far is processed by the worker."""
    from sqlalchemy import text

    async def done() -> bool:
        async with s.engine.connect() as conn:
            n = (await conn.execute(text(
                "SELECT count(*) FROM events WHERE processed_at IS NULL"))).scalar_one()
        return int(n) == 0

    await eventually(done)
