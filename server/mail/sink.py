"""A development SMTP server on aiosmtpd that accepts every letter and stores it as .eml.

``make run`` starts it (``python -m server.mail``) when ``EVENTFLOW_SMTP_URL`` is unset,
so letters from workflows land in ``<data dir>/mail/`` on a fresh machine. Tests use the
same class in their own loop, reading ``received`` instead of the files.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    # The client's (address, port): letters of one connection share it.
    peer: tuple[str, int] | None = None


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
        peer = session.peer if isinstance(session.peer, tuple) else None
        self._sink.store(mail_from=str(envelope.mail_from),
                         rcpt_tos=tuple(envelope.rcpt_tos), data=data,
                         peer=(str(peer[0]), int(peer[1])) if peer else None)
        return "250 OK stored"


class MailSink:
    """SMTP on ``host:port`` (port 0 picks one); keeps letters in memory and/or a folder."""

    def __init__(self, *, directory: Path | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.received: list[Received] = []
        self._server: asyncio.base_events.Server | None = None
        self._counter = itertools.count(1)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def store(self, *, mail_from: str, rcpt_tos: tuple[str, ...], data: bytes,
              peer: tuple[str, int] | None = None) -> None:
        message = message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(mail_from=mail_from, rcpt_tos=rcpt_tos, message=message,
                                      peer=peer))
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._counter):05d}.eml"
            (self.directory / name).write_bytes(data)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        def factory() -> Any:
            return SMTP(handler, hostname="eventflow-sink", ident="eventflow dev sink",
                        data_size_limit=25 * 1024 * 1024, enable_SMTPUTF8=True)

        self._server = await loop.create_server(factory, host=self.host, port=self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
