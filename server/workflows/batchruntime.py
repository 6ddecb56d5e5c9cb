"""The ``BlockRuntime`` of a batch of external steps (email, webhook), run side by side.

The batch's blocks run concurrently, so their calls arrive together: every read of one
kind made in the same turn of the event loop is answered by one query (``Gather``), the
letters are rendered together (``RenderPool.render_many``), earlier delivery records read
in one query before the sends (one already finished is not sent again); ``closed`` lists
how each ended, written with the step records (``stepbatch``). Letters leave over the
worker's kept SMTP connections (``server.mail.pool``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from server.consent.unsubscribed import unsubscribed_among
from server.contacts.validation import email_key
from server.db.models import utcnow
from server.mail import MailDeferred
from server.mail.compose import Letter
from server.messaging.delivery import deliver_letter
from server.templating.pool import RenderJob, RenderPart
from server.workflows import contacts, deliveries
from server.workflows.engine import EngineDeps
from server.workflows.runtime import (
    ContactInfo,
    Delivery,
    RetryLater,
    RunView,
    StepFailed,
    stored_template,
)

__all__ = ["BatchRuntime", "Gather"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Gather(Generic[K, V]):
    """Answers ``get(key)`` calls made in one turn of the event loop with one ``fetch`` of
    all their keys (and payloads); answers are kept for the batch. ``fetch`` returns a
    value or an exception (raised to that key's callers) per key."""

    def __init__(self, fetch: Callable[[dict[K, Any]], Awaitable[Mapping[K, V | Exception]]]
                 ) -> None:
        self._fetch = fetch
        self._done: dict[K, V | Exception] = {}
        self._waiting: dict[K, tuple[asyncio.Future[None], Any]] = {}
        self._flush: asyncio.Future[None] | None = None

    async def get(self, key: K, payload: Any = None) -> V:
        if key not in self._done:
            if key not in self._waiting:
                if self._flush is None:
                    self._flush = asyncio.get_running_loop().create_future()
                    asyncio.get_running_loop().call_soon(self._start)
                self._waiting[key] = (self._flush, payload)
            await asyncio.shield(self._waiting[key][0])
        value = self._done[key]
        if isinstance(value, Exception):
            raise value
        return value

    def _start(self) -> None:
        assert self._flush is not None
        waiting, done = self._waiting, self._flush
        self._waiting, self._flush = {}, None
        task = asyncio.ensure_future(self._run({k: p for k, (_f, p) in waiting.items()}, done))
        task.add_done_callback(lambda _t: None)

    async def _run(self, wanted: dict[K, Any], done: asyncio.Future[None]) -> None:
        try:
            found = await self._fetch(wanted)
        except Exception as exc:  # noqa: BLE001 - every caller of the flush gets it
            found = {k: exc for k in wanted}
        for key in wanted:
            self._done[key] = found.get(key, LookupError(f"nothing fetched for {key!r}"))
        done.set_result(None)


class _Renders:
    """The batch's ``renderer``: the render calls of one turn go out as one ``render_many``."""

    def __init__(self, deps: EngineDeps) -> None:
        self._pool = deps.renderer
        self._gather: Gather[int, list[str]] = Gather(self._fetch)
        self._next = 0

    async def render(self, parts: Sequence[RenderPart], context: Mapping[str, object], *,
                     account_id: int) -> list[str]:
        self._next += 1
        return await self._gather.get(self._next, RenderJob(parts, context, account_id))

    async def _fetch(self, wanted: dict[int, RenderJob]) -> dict[int, list[str] | Exception]:
        keys = list(wanted)
        results = await self._pool.render_many([wanted[k] for k in keys])
        out: dict[int, list[str] | Exception] = {}
        for key, result in zip(keys, results, strict=True):
            out[key] = result
        return out


class _Record:
    """The ``DeliveryLog`` of one letter in the batch: its earlier record read with the
    others', how it ended written with the step records."""

    def __init__(self, rt: BatchRuntime, run: RunView, plan: deliveries.Planned) -> None:
        self._rt, self._run, self._plan = rt, run, plan

    async def open(self) -> tuple[str, str | None] | None:
        earlier = await self._rt.opened(self._run, self._plan)
        if earlier is not None:
            return earlier.status, earlier.reason
        if self._plan.refused:
            self._rt.closed.append(deliveries.Ended(self._run, self._plan, "failed",
                                                    self._plan.refused, attempted=False))
            return "failed", self._plan.refused
        return None

    async def close(self, *, status: str, reason: str | None = None) -> None:
        self._rt.closed.append(deliveries.Ended(self._run, self._plan, status, reason))


def _by_account(wanted: dict[tuple[int, Any], Any]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for account_id, item in wanted:
        out.setdefault(account_id, []).append(item)
    return out


class BatchRuntime:
    """``BlockRuntime`` over the database, SMTP and HTTP for external blocks run together."""

    def __init__(self, deps: EngineDeps) -> None:
        self._d = deps
        self.sender = deps.settings.mail_from
        self.renderer = _Renders(deps)
        # How the batch's effects ended, to record with the step records.
        self.closed: list[deliveries.Ended] = []
        self._contacts: Gather[tuple[int, int], ContactInfo | None] = Gather(self._fetch_contacts)
        self._by_email: Gather[tuple[int, str], ContactInfo | None] = Gather(self._fetch_by_email)
        self._listed: Gather[tuple[int, str], bool] = Gather(self._fetch_listed)
        self._templates: Gather[tuple[int, int], tuple[str, str, str]] = \
            Gather(self._fetch_templates)
        self._opens: Gather[tuple[int, int], Delivery | None] = Gather(self._fetch_opens)

    def now(self) -> datetime:
        return utcnow()

    # Reads, gathered.

    async def contact(self, run: RunView) -> ContactInfo | None:
        if run.contact_id is None:
            return None
        return await self._contacts.get((run.account_id, run.contact_id))

    async def contact_by_email(self, run: RunView, email: str) -> ContactInfo | None:
        return await self._by_email.get((run.account_id, email))

    async def address_listed(self, run: RunView, email: str) -> bool:
        return await self._listed.get((run.account_id, email))

    async def fact(self, run: RunView, kind: str, arg: Any) -> bool:
        raise RuntimeError("condition facts are read inside the step transaction")

    async def template(self, run: RunView, template_id: int) -> tuple[str, str, str]:
        return await self._templates.get((run.account_id, template_id))

    async def _per_account(self, wanted: dict[tuple[int, Any], Any],
                           read: Callable[[AsyncConnection, int, list[Any]],
                                          Awaitable[Mapping[Any, Any]]],
                           missing: Any = None) -> dict[tuple[int, Any], Any]:
        """``read(conn, account, items)`` once per account of the wanted keys, on one
        connection; keys it leaves out get ``missing``."""
        out: dict[tuple[int, Any], Any] = {k: missing for k in wanted}
        async with self._d.engine.connect() as conn:
            for account_id, items in _by_account(wanted).items():
                found = await read(conn, account_id, items)
                out.update({(account_id, item): value for item, value in found.items()})
        return out

    async def _fetch_contacts(self, wanted: dict[tuple[int, int], Any]
                              ) -> dict[tuple[int, int], ContactInfo | None | Exception]:
        return await self._per_account(wanted, lambda conn, account_id, ids: (
            contacts.contact_infos(conn, account_id=account_id, contact_ids=ids)))

    async def _fetch_by_email(self, wanted: dict[tuple[int, str], Any]
                              ) -> dict[tuple[int, str], ContactInfo | None | Exception]:
        return await self._per_account(wanted, lambda conn, account_id, emails: (
            contacts.contacts_by_email(conn, account_id=account_id, emails=emails)))

    async def _fetch_listed(self, wanted: dict[tuple[int, str], Any]
                            ) -> dict[tuple[int, str], bool | Exception]:
        async def read(conn: AsyncConnection, account_id: int, emails: list[str]
                       ) -> dict[str, bool]:
            listed = await unsubscribed_among(conn, account_id=account_id, emails=emails)
            return {e: email_key(e) in listed for e in emails}

        return await self._per_account(wanted, read, missing=False)

    async def _fetch_templates(self, wanted: dict[tuple[int, int], Any]
                               ) -> dict[tuple[int, int], tuple[str, str, str] | Exception]:
        out: dict[tuple[int, int], tuple[str, str, str] | Exception] = {}
        async with self._d.engine.connect() as conn:
            for account_id, template_id in wanted:
                try:
                    out[(account_id, template_id)] = await stored_template(
                        conn, account_id=account_id, template_id=template_id)
                except StepFailed as exc:
                    out[(account_id, template_id)] = exc
        return out

    # Records and effects.

    async def opened(self, run: RunView, plan: deliveries.Planned) -> Delivery | None:
        """The step's earlier record if it already ended (sent or failed): not again."""
        return await self._opens.get((run.run_id, run.seq))

    async def _fetch_opens(self, wanted: dict[tuple[int, int], Any]
                           ) -> dict[tuple[int, int], Delivery | None | Exception]:
        found = await deliveries.finished_deliveries(self._d.engine, list(wanted))
        return {key: found.get(key) for key in wanted}

    async def deliver_email(self, run: RunView, block: dict[str, Any], letter: Letter,
                            contact_id: int | None, refused: str | None) -> Delivery:
        plan = deliveries.Planned(channel="email", block_id=block["id"], contact_id=contact_id,
                                  recipient=letter.to, subject=letter.subject,
                                  key=letter.message_id, refused=refused, html=letter.html,
                                  text=letter.text)
        try:
            status, reason = await deliver_letter(log=_Record(self, run, plan),
                                                  smtp=self._d.smtp, letter=letter,
                                                  pool=self._d.mail)
        except MailDeferred as exc:
            raise RetryLater(exc.reason) from None
        return Delivery(status, reason)

    async def post_webhook(self, run: RunView, block: dict[str, Any], url: str,
                           payload: dict[str, Any], key: str) -> Delivery:
        plan = deliveries.Planned(channel="webhook", block_id=block["id"],
                                  contact_id=run.contact_id, recipient=url, subject="", key=key,
                                  text=orjson.dumps(payload).decode())
        earlier = await self.opened(run, plan)
        if earlier is not None:
            return earlier
        try:
            resp = await self._d.http.post(url, json=payload, headers={"Idempotency-Key": key})
        except httpx.HTTPError as exc:
            reason = f"POST {url} failed: {type(exc).__name__}: {exc}"
            self.closed.append(deliveries.Ended(run, plan, "queued", reason))
            raise RetryLater(reason) from None
        if not 200 <= resp.status_code < 300:
            reason = f"POST {url} answered HTTP {resp.status_code}"
            self.closed.append(deliveries.Ended(run, plan, "queued", reason))
            raise RetryLater(reason)
        self.closed.append(deliveries.Ended(run, plan, "sent"))
        return Delivery("sent")

    async def write_contact(self, run: RunView, *, create: bool, form: dict[str, Any]
                            ) -> int | None:
        raise RuntimeError("database blocks run inside the step transaction")

    async def launch_event(self, run: RunView, *, event_type_key: str, key_value: str,
                           params: list[dict[str, Any]]) -> int:
        raise RuntimeError("database blocks run inside the step transaction")

