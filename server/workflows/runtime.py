"""What a block step sees (``RunView``), what it decides (``StepOutcome``) and the effects it
asks for (``BlockRuntime``). The engine implements the runtime over the database, SMTP and
HTTP; the simulator implements it in memory. Block logic lives once, in ``blocks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import NotFound
from server.mail.compose import Letter
from server.templating.pool import Renderer
from server.templating.store import get_template


@dataclass(frozen=True, slots=True)
class RunView:
    run_id: int
    account_id: int
    workflow_id: int
    event_id: int
    contact_id: int | None
    event_type_key: str
    key_value: str
    params: dict[str, Any]
    started_at: datetime
    seq: int

    @property
    def trigger(self) -> dict[str, Any]:
        return {"eventTypeKey": self.event_type_key, "keyValue": self.key_value,
                "params": [{"name": k, "value": v} for k, v in self.params.items()]}


@dataclass(frozen=True, slots=True)
class ContactInfo:
    contact_id: int
    email: str | None
    phone: str | None
    time_zone: str | None
    subscribed: bool
    blacklisted: bool
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """``status``: done, skipped (nothing to do, run goes on) or failed (run ends failed)."""

    status: str
    next: str | None
    wait_until: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """An external effect's result: ``sent`` or ``failed`` (with reason)."""

    status: str
    reason: str | None = None


class RetryLater(Exception):
    """A temporary failure of an external effect; the engine retries with backoff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StepFailed(Exception):
    """A permanent failure of a block: the step is recorded failed and the run ends."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def stored_template(conn: AsyncConnection, *, account_id: int, template_id: int
                          ) -> tuple[str, str, str]:
    """Subject, HTML and text of a stored template; one that is gone fails the step."""
    try:
        t = await get_template(conn, account_id=account_id, template_id=template_id)
    except NotFound as exc:
        raise StepFailed(exc.message) from None
    return t.subject, t.html, t.text


class BlockRuntime(Protocol):
    sender: str

    @property
    def renderer(self) -> Renderer:
        """Message templates render here, away from the caller's event loop."""
        ...

    def now(self) -> datetime: ...

    async def contact(self, run: RunView) -> ContactInfo | None: ...

    async def contact_by_email(self, run: RunView, email: str) -> ContactInfo | None: ...

    async def address_listed(self, run: RunView, email: str) -> bool:
        """Whether ``email`` is on the account's unsubscribed-address list."""
        ...

    async def fact(self, run: RunView, kind: str, arg: Any) -> bool: ...

    async def template(self, run: RunView, template_id: int) -> tuple[str, str, str]: ...

    async def deliver_email(self, run: RunView, block: dict[str, Any], letter: Letter,
                            contact_id: int | None, refused: str | None) -> Delivery: ...

    async def post_webhook(self, run: RunView, block: dict[str, Any], url: str,
                           payload: dict[str, Any], key: str) -> Delivery: ...

    async def write_contact(self, run: RunView, *, create: bool, form: dict[str, Any]
                            ) -> int | None: ...

    async def launch_event(self, run: RunView, *, event_type_key: str, key_value: str,
                           params: list[dict[str, Any]]) -> int: ...


def backoff(attempt: int, *, base: float, cap: float = 600.0) -> timedelta:
    """The wait before retry ``attempt`` (1, 2, ...) of a step that asked to retry later."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))
