"""The render pool: hard time and memory bounds in child processes, fair between accounts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from server.errors import Unavailable
from server.templating import RenderLimitExceeded, TemplateError
from server.templating.pool import RenderPart, RenderPool

# One method call doing 10^8 comparisons: no cooperative time check runs inside it.
UNINTERRUPTIBLE = ("#set($row = [1..10000])#set($a = [])#set($b = [])"
                   "#foreach($i in [1..10000])#set($d = $a.add($row))#set($d = $b.add($row))#end"
                   "$a.equals($b)")


@pytest.fixture
async def pool() -> AsyncIterator[RenderPool]:
    p = RenderPool(processes=2, per_account=1, memory_bytes=128 << 20)
    yield p
    await p.close()


async def test_renders_parts_against_one_context(pool: RenderPool) -> None:
    """Each part of a job renders against the same context, in order."""
    out = await pool.render([RenderPart("Hi $data.name"), RenderPart("#foreach($i in [1..3])$i#end")],
                            {"data": {"name": "Ann"}}, account_id=1)
    assert out == ["Hi Ann", "123"]


def _children() -> set[int]:
    """The pids of this process's children (from /proc)."""
    out: set[int] = set()
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid():
            out.add(int(name))
    return out


async def test_warm_starts_the_processes_ahead_of_the_first_render(pool: RenderPool) -> None:
    """``warm`` starts the pool's processes before any render; renders then use them, and
    warming again starts none (the pool never holds more than its size)."""
    before = _children()
    await pool.warm()
    started = _children() - before
    assert len(started) == 2
    out = await pool.render([RenderPart("Hi $data.name")], {"data": {"name": "Ann"}},
                            account_id=1)
    assert out == ["Hi Ann"]
    await pool.warm()
    assert _children() - before == started


async def _gone(pids: set[int], *, within: float = 10.0) -> set[int]:
    """Those of ``pids`` still this process's children after ``within`` seconds (or fewer)."""
    deadline = asyncio.get_running_loop().time() + within
    while (left := pids & _children()) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return left


@pytest.mark.parametrize("when", [0.0, 0.05, 0.3])
async def test_a_warm_cancelled_or_closed_meanwhile_leaves_no_process(when: float) -> None:
    """A worker that stops while its pool warms (the step pump cancels ``warm``, then
    closes the pool) leaves no render process behind, whenever it stops."""
    before = _children()
    for cancel in (True, False):
        p = RenderPool(processes=2, per_account=1, memory_bytes=128 << 20)
        task = asyncio.create_task(p.warm())
        await asyncio.sleep(when)
        if cancel:
            task.cancel()
        await p.close()
        await asyncio.gather(task, return_exceptions=True)
        await p.close()
        assert not await _gone(_children() - before), f"cancel={cancel}, after {when} s"


async def test_two_warms_at_once_while_renders_hold_the_slots_both_end() -> None:
    """Two ``warm`` calls waiting together behind renders in progress (both slots held):
    each used to get one slot as the renders ended and wait for the other's for ever, and
    every render after them too (CI: 58 letters claimed and never sent). Both now end, and
    a render after them is served."""
    before = _children()
    p = RenderPool(processes=2, per_account=2, memory_bytes=128 << 20)
    try:
        # Stand-ins for two renders in progress (a render holds one slot while it runs).
        await p._slots.acquire()
        await p._slots.acquire()
        warms = [asyncio.create_task(p.warm()) for _ in range(2)]
        await asyncio.sleep(0.05)
        p._slots.release()
        await asyncio.sleep(0.05)
        p._slots.release()
        await asyncio.wait_for(asyncio.gather(*warms), 60)
        assert await asyncio.wait_for(p.render([RenderPart("ok")], {}, account_id=1), 60) == [
            "ok"]
    finally:
        await p.close()
    assert not await _gone(_children() - before)


async def test_errors_keep_their_kind_and_place(pool: RenderPool) -> None:
    """A failing reference comes back as the same TemplateError with line and column."""
    with pytest.raises(TemplateError) as caught:
        await pool.render([RenderPart("x\n  $data.list.get(5)")], {"data": {"list": [1]}},
                          account_id=1)
    assert (caught.value.line, caught.value.column) == (2, 3)
    assert "out of bounds" in caught.value.reason


async def test_work_past_the_time_limit_is_killed(pool: RenderPool) -> None:
    """A render stuck inside one operation is killed at its limit; the pool goes on."""
    with pytest.raises(RenderLimitExceeded, match="took too long"):
        await pool.render([RenderPart(UNINTERRUPTIBLE, timeout=0.3)], {}, account_id=1)
    assert await pool.render([RenderPart("ok")], {}, account_id=1) == ["ok"]


async def test_memory_past_the_limit_ends_the_render(pool: RenderPool) -> None:
    """Strings kept in a list (each under the string limit) stop at the process's memory
    limit with a limit error; the next render gets a fresh process."""
    template = ("#set($s = 'ab')#foreach($i in [1..18])#set($s = $s.concat($s))#end"
                "#set($keep = [])#foreach($i in [1..400])#set($d = $keep.add($s.concat('x')))#end"
                "$keep.size()")
    with pytest.raises(RenderLimitExceeded, match="memory"):
        await pool.render([RenderPart(template, timeout=20)], {}, account_id=1)
    assert await pool.render([RenderPart("ok")], {}, account_id=1) == ["ok"]


async def test_one_account_cannot_hold_every_process(pool: RenderPool) -> None:
    """With two processes and one per account, a second account renders while the first
    account's slow renders hold (or wait for) a process."""
    slow = [asyncio.ensure_future(pool.render([RenderPart(UNINTERRUPTIBLE, timeout=1.5)], {},
                                              account_id=1)) for _ in range(2)]
    await asyncio.sleep(0.3)
    assert await pool.render([RenderPart("mine")], {}, account_id=2) == ["mine"]
    assert not all(task.done() for task in slow)
    results = await asyncio.gather(*slow, return_exceptions=True)
    assert all(isinstance(r, RenderLimitExceeded) for r in results)


async def test_a_process_that_cannot_start_is_unavailable_not_internal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A render process that ends before it is ready (here: its Python cannot start, with
    PYTHONHOME pointing nowhere) is started once more, then the caller is told to retry
    (Unavailable: 503 / UNAVAILABLE); it was an IncompleteReadError, which the API
    answered INTERNAL (seen once in CI: POST /api/v1/messages/preview gave 502). The pool
    renders again as soon as a process starts."""
    pool = RenderPool(processes=1)
    try:
        monkeypatch.setenv("PYTHONHOME", "/nonexistent")
        with pytest.raises(Unavailable) as caught:
            await pool.render([RenderPart("x")], {}, account_id=1)
        assert "try again" in str(caught.value)
        monkeypatch.delenv("PYTHONHOME")
        assert await pool.render([RenderPart("$data.a")], {"data": {"a": "ok"}},
                                 account_id=1) == ["ok"]
    finally:
        await pool.close()
