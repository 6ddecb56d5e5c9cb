"""Renders templates in child processes, so no template can stall or bloat the caller.

The sandbox's budgets (``limits``, ``values``) are cooperative: they are checked as the
render goes. Here are the hard ones: each job has a wall-clock allowance (the sum of
its parts' timeouts plus ``GRACE``) after which its child is killed, and each child runs
under an address-space limit (``renderproc``). The serving process only waits on a pipe,
so its event loop keeps answering every other caller meanwhile. One account may hold at
most ``per_account`` children at a time; its other renders wait for those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from server.errors import RenderLimitExceeded, TemplateError, Unavailable, WrongFormat
from server.templating.limits import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT
from server.templating.renderproc import HEADER

log = logging.getLogger(__name__)
# Time for the pipe round trip on top of the render's own allowance.
GRACE = 0.5
DEFAULT_MEMORY_BYTES = 512 << 20
_ROOT = str(Path(__file__).resolve().parents[2])
_KINDS: dict[str, type[TemplateError]] = {"limit": RenderLimitExceeded,
                                          "wrong_format": WrongFormat}


@dataclass(frozen=True, slots=True)
class RenderPart:
    """One text of a job (a subject, an HTML body...) with its own budget."""

    text: str
    max_output: int = DEFAULT_MAX_OUTPUT
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class RenderJob:
    """One ``render`` call of a batch (``RenderPool.render_many``)."""

    parts: Sequence[RenderPart]
    context: Mapping[str, object]
    account_id: int


class Renderer(Protocol):
    """What renders a template's parts: a ``RenderPool``, or a batch's collector of calls."""

    async def render(self, parts: Sequence[RenderPart], context: Mapping[str, object], *,
                     account_id: int) -> list[str]: ...


class _NotStarted(Exception):
    """A render process ended (or answered nonsense) before saying it was ready."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"exit {returncode}")
        self.returncode = returncode


# How many times a job tries to start a render process before it is answered Unavailable.
START_TRIES = 2


class _Child:
    """One render process and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, memory_bytes: int) -> _Child:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.templating.renderproc", str(memory_bytes),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
        child = cls(proc)
        try:
            ready = await child._receive()
        except (asyncio.IncompleteReadError, ConnectionError):
            ready = None  # it ended before its first frame
        except BaseException:  # cancelled while it starts: it must not outlive its pool
            await asyncio.shield(child.kill())
            raise
        if ready != {"ready": True}:
            await child.kill()
            raise _NotStarted(child.proc.returncode)
        return child

    async def _receive(self) -> object:
        assert self.proc.stdout is not None
        (size,) = HEADER.unpack(await self.proc.stdout.readexactly(HEADER.size))
        return orjson.loads(await self.proc.stdout.readexactly(size))

    async def ask(self, job: dict[str, object]) -> dict[str, object]:
        assert self.proc.stdin is not None
        payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.write(HEADER.pack(len(payload)) + payload)
        await self.proc.stdin.drain()
        reply = await self._receive()
        assert isinstance(reply, dict)
        return reply

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()


class RenderPool:
    """Child processes that render templates, started on first use (or ahead of it by
    ``warm``) and replaced when killed."""

    def __init__(self, *, processes: int = 2, per_account: int | None = None,
                 memory_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        self._size = max(1, processes)
        self._per_account = per_account or max(1, self._size - 1)
        self._memory = memory_bytes
        self._idle: list[_Child] = []
        self._slots = asyncio.Semaphore(self._size)
        # ``warm`` takes every slot, one at a time: two warms at once could each hold some
        # and wait for the other's for ever (and every render with them). One at a time.
        self._warming = asyncio.Lock()
        self._accounts: dict[int, tuple[asyncio.Semaphore, int]] = {}
        self._closed = False

    async def warm(self) -> None:
        """Start the children not started yet, so the first renders do not wait for a
        process to start (a worker's first letters under load waited ~1 s for theirs).
        Renders meanwhile wait as they would have for a start of their own."""
        async with self._warming:
            await self._warm()

    async def _warm(self) -> None:
        held = 0
        try:
            for _ in range(self._size):  # all of them: no child is in use, so none is missing
                await self._slots.acquire()
                held += 1
            if self._closed:
                return
            started = await asyncio.gather(*(self._start() for _ in range(
                self._size - len(self._idle))), return_exceptions=True)
            for child in started:
                if isinstance(child, _Child):
                    if self._closed:  # closed while they started: close killed the others
                        await child.kill()
                    else:
                        self._idle.append(child)
                elif isinstance(child, Exception):
                    log.warning("starting a render process ahead of use failed: %s", child)
                else:
                    raise child
        finally:
            for _ in range(held):
                self._slots.release()

    async def render(self, parts: Sequence[RenderPart], context: Mapping[str, object], *,
                     account_id: int) -> list[str]:
        """Each part rendered against ``context``; the first failure raises its
        ``TemplateError``, a job over its time or memory raises ``RenderLimitExceeded``."""
        job: dict[str, object] = {"parts": [(p.text, p.max_output, p.timeout) for p in parts],
               "context": dict(context)}
        allowance = sum(p.timeout for p in parts) + GRACE
        return _result(await self._ask(job, allowance, account_id))

    async def _ask(self, job: dict[str, object], allowance: float, account_id: int
                   ) -> dict[str, object]:
        """One round trip to an idle child (started if none), killed past ``allowance``."""
        async with self._account_turn(account_id), self._slots:
            child = self._idle.pop() if self._idle else await self._start()
            try:
                reply = await asyncio.wait_for(child.ask(job), allowance)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
                await child.kill()
                if isinstance(exc, TimeoutError):
                    raise RenderLimitExceeded("render took too long (time limit exceeded)"
                                              ) from None
                log.warning("a template render process ended (exit %s)", child.proc.returncode)
                raise RenderLimitExceeded("render stopped: its process ended (over its "
                                          "memory limit)") from None
            except BaseException:
                await child.kill()
                raise
            if reply.get("exit") or self._closed:
                await child.kill()
            else:
                self._idle.append(child)
        return reply

    async def _start(self) -> _Child:
        """A new render process; one that ends before it is ready is tried again once,
        then the caller is told to retry (503 / UNAVAILABLE), never an internal error."""
        for attempt in range(1, START_TRIES + 1):
            try:
                return await _Child.start(self._memory)
            except _NotStarted as exc:
                log.warning("a template render process ended before it was ready (exit %s, "
                            "try %d of %d)", exc.returncode, attempt, START_TRIES)
        raise Unavailable("the template renderer could not start a process (see the server "
                          "log); try again in a moment")

    async def render_many(self, jobs: Sequence[RenderJob]) -> list[list[str] | TemplateError]:
        """Each job's texts, or the ``TemplateError`` it failed with, in order. An account's
        jobs go to at most ``per_account`` children, a share each in one round trip; a
        share whose child is killed (over its time or memory) is rendered again job by
        job, so only the job at fault fails."""
        out: list[list[str] | TemplateError] = [[] for _ in jobs]
        by_account: dict[int, list[int]] = {}
        for i, job in enumerate(jobs):
            by_account.setdefault(job.account_id, []).append(i)
        shares: list[tuple[int, list[int]]] = []
        for account_id, indexes in by_account.items():
            n = min(len(indexes), self._per_account)
            shares += [(account_id, indexes[k::n]) for k in range(n)]
        await asyncio.gather(*(self._render_share(account_id, [jobs[i] for i in indexes],
                                                  indexes, out)
                               for account_id, indexes in shares))
        return out

    async def _render_share(self, account_id: int, jobs: list[RenderJob], indexes: list[int],
                            out: list[list[str] | TemplateError]) -> None:
        if len(jobs) > 1:
            payload: dict[str, object] = {"jobs": [
                {"parts": [(p.text, p.max_output, p.timeout) for p in job.parts],
                 "context": dict(job.context)} for job in jobs]}
            allowance = sum(p.timeout for job in jobs for p in job.parts) + GRACE
            try:
                reply = await self._ask(payload, allowance, account_id)
            except RenderLimitExceeded:
                reply = {}
            replies = reply.get("replies")
            if isinstance(replies, list) and len(replies) == len(jobs):
                for i, one in zip(indexes, replies, strict=True):
                    try:
                        out[i] = _result(one)
                    except TemplateError as exc:
                        out[i] = exc
                return
        for i, job in zip(indexes, jobs, strict=True):  # one by one: find the job at fault
            try:
                out[i] = await self.render(job.parts, job.context, account_id=account_id)
            except TemplateError as exc:
                out[i] = exc

    @contextlib.asynccontextmanager
    async def _account_turn(self, account_id: int) -> AsyncIterator[None]:
        gate, users = self._accounts.get(account_id) or (asyncio.Semaphore(self._per_account), 0)
        self._accounts[account_id] = (gate, users + 1)
        try:
            async with gate:
                yield
        finally:
            gate, users = self._accounts[account_id]
            if users == 1:
                del self._accounts[account_id]
            else:
                self._accounts[account_id] = (gate, users - 1)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for child in idle:
            await child.kill()


def _result(reply: dict[str, object]) -> list[str]:
    if "ok" in reply:
        out = reply["ok"]
        assert isinstance(out, list)
        return [str(text) for text in out]
    error = reply["error"]
    assert isinstance(error, dict)
    kind = _KINDS.get(str(error["kind"]), TemplateError)
    line, column = error["line"], error["column"]
    raise kind.at(str(error["reason"]), line=line if isinstance(line, int) else None,
                  column=column if isinstance(column, int) else None)
