"""Open SMTP connections kept per server and reused letter after letter.

Connecting, greeting, EHLO (and TLS, and AUTH) cost more than a letter: a worker sending
a batch of letters to one server sends them over up to ``per_server`` connections it
keeps open. A connection idle for ``idle_seconds`` is closed; one the server closed
meanwhile is found out by the next letter, which is then sent once more over a fresh
connection (the same Message-ID, so a receiver can tell a repeat). A connection that
failed any other way than by a server's answer is dropped, never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiosmtplib

from server.mail.compose import Letter
from server.mail.config import SmtpConfig
from server.mail.send import classified, connection_args, transmit

__all__ = ["SmtpPool"]


class _Server:
    def __init__(self, per_server: int) -> None:
        self.slots = asyncio.Semaphore(per_server)
        self.idle: list[tuple[aiosmtplib.SMTP, float]] = []


class SmtpPool:
    def __init__(self, *, per_server: int = 4, idle_seconds: float = 20.0) -> None:
        self._per_server = per_server
        self._idle_seconds = idle_seconds
        self._servers: dict[SmtpConfig, _Server] = {}
        self._closed = False

    async def send(self, *, config: SmtpConfig, letter: Letter) -> str:
        """Send ``letter`` over a kept connection; MailRejected or MailDeferred on failure."""
        server = self._servers.get(config)
        if server is None:
            server = self._servers[config] = _Server(self._per_server)
        async with server.slots:
            reused = self._take(server)
            with classified(config):
                smtp = reused or await self._connect(config)
                try:
                    answer = await self._send(smtp, letter, config)
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    smtp.close()
                    if reused is None:
                        raise
                    # Closed by the server while idle: once more on a fresh connection.
                    smtp = await self._connect(config)
                    answer = await self._send(smtp, letter, config)
                self._keep(server, smtp)
        return answer

    async def _send(self, smtp: aiosmtplib.SMTP, letter: Letter, config: SmtpConfig) -> str:
        try:
            return await transmit(smtp, letter, config)
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException):
            if smtp.is_connected:  # an answer: the envelope was reset, the line is fine
                self._keep(self._servers[config], smtp)
            raise
        except BaseException:
            smtp.close()
            raise

    async def _connect(self, config: SmtpConfig) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(**connection_args(config))
        await smtp.connect()
        return smtp

    def _take(self, server: _Server) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while server.idle:
            smtp, since = server.idle.pop()
            if smtp.is_connected and now - since < self._idle_seconds:
                return smtp
            smtp.close()
        return None

    def _keep(self, server: _Server, smtp: aiosmtplib.SMTP) -> None:
        if self._closed or not smtp.is_connected:
            smtp.close()
            return
        server.idle.append((smtp, time.monotonic()))

    async def close(self) -> None:
        """QUIT and close every kept connection."""
        self._closed = True
        for server in self._servers.values():
            idle, server.idle = server.idle, []
            for smtp, _since in idle:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await asyncio.wait_for(smtp.quit(), 2)
                smtp.close()
