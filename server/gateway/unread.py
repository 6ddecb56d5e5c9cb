"""Answers given before the request's body was read to its end.

The gateway refuses some requests before reading their bodies (declared over the limit,
no credentials, not JSON) or halfway (the body passed the limit). A client that writes
its whole body before reading anything (urllib, many SDKs) then finds the connection
closed under it and sees a reset instead of the answer, since a socket closed with
unread data answers with RST. So such an answer is sent at once with
``Connection: close``, the rest of the body is read and thrown away, up to
``DRAIN_BYTES`` within ``DRAIN_SECONDS``, and only then is the answer ended and the
connection closed. A client that sent ``Expect: 100-continue`` and was not told to
continue has sent nothing, so nothing is drained.

``UnreadBody`` wraps one request's ``receive`` and ``send``; ``GatewayApp`` applies it to
every HTTP request, so every route (and the router's 404/405) behaves alike.
"""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 10.0


def _has_body(scope: Scope) -> tuple[bool, bool]:
    """(the request has a body, it asked for 100-continue)."""
    body = expect = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            body = body or value.strip() not in (b"", b"0")
        elif name == b"transfer-encoding":
            body = True
        elif name == b"expect":
            expect = value.strip().lower() == b"100-continue"
    return body, expect


class UnreadBody:
    """One request's ``receive`` and ``send``, draining an unread body after the answer."""

    __slots__ = ("_drain", "_read_any", "_receive", "_scope", "_send", "complete")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._scope = scope
        self._receive = receive
        self._send = send
        self.complete = False  # the body was read to its end (or there is none)
        self._read_any = False
        self._drain = False

    async def receive(self) -> Message:
        message = await self._receive()
        self._read_any = True
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.complete = True
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self.complete:
            has_body, expect = _has_body(self._scope)
            if has_body:
                self._drain = not (expect and not self._read_any)
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"connection", b"close")]}
            else:
                self.complete = True
        elif kind == "http.response.body" and self._drain and not message.get("more_body"):
            self._drain = False
            await self._send({**message, "more_body": True})
            await self._discard()
            message = {"type": "http.response.body", "body": b""}
        await self._send(message)

    async def _discard(self) -> None:
        """Read and drop the rest of the body, within the bounds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        dropped = 0
        while not self.complete and dropped <= DRAIN_BYTES:
            try:
                message = await asyncio.wait_for(self.receive(), deadline - loop.time())
            except TimeoutError:
                return
            dropped += len(message.get("body", b""))

