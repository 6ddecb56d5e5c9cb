"""Connection limits of the gateway's HTTP server: header size and count, and deadlines.

uvicorn's httptools protocol bounds neither the request head nor the time a client takes:
a 1 MB header or 10,000 headers were answered 200, a connection that sent nothing (or
half a request) was held for ever, and so was a body shorter than its Content-Length.
``GuardedHttpToolsProtocol`` adds, per connection:

- the request head (request line and headers) at most ``MAX_HEAD_BYTES``, counted as the
  bytes arrive, and at most ``MAX_HEADERS`` headers: ``431`` and the connection closed,
  before the application sees the request;
- a new connection's first head complete within ``timeout`` seconds of the connection,
  a later head within ``timeout`` seconds of its first byte: else ``408`` (or a plain
  close when nothing was sent) — a client trickling a byte at a time gains nothing;
- between requests, an idle keep-alive connection is closed after ``keep_alive`` seconds
  (``EVENTFLOW_KEEP_ALIVE``). It is longer than the idle expiry of client pools (httpx's
  is 5 s): with the two equal, a client could send its next request on a connection in
  the very moment the gateway closed it, and lose it ("Server disconnected"). While more
  than ``CROWDED_CONNECTIONS`` are open (browsers of a busy site each hold one), the limit
  is ``CROWDED_KEEP_ALIVE``, so idle connections don't crowd out new ones;
- the body: no more than ``timeout`` seconds between its chunks: else ``408`` when no
  answer has started, and the connection closed (the application sees a disconnect).

While the gateway drains (``server.gateway.drain``) every answer closes its connection; at the
shutdown after it, a connection that is idle is closed ``IDLE_CLOSE_SECONDS`` later, so a
request that was already on its way is read and answered rather than reset.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.gateway.drain import Drain

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
DEFAULT_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE = 75.0
# Connections at once before new requests get 503 (each costs a file descriptor); past
# half of it, idle connections are closed sooner.
MAX_CONNECTIONS = 4096
CROWDED_CONNECTIONS = MAX_CONNECTIONS // 2
CROWDED_KEEP_ALIVE = 5.0
# After a refusal: how long, and how much, the rest of the request is read and dropped.
LINGER_SECONDS = 1.0
MAX_DISCARD_BYTES = 4 * 1024 * 1024
# At shutdown: how long an idle connection stays open for a request already sent.
IDLE_CLOSE_SECONDS = 0.1

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_MESSAGES = {
    408: "the request was not received in time; send it whole and at once",
    431: f"the request head is over {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers",
}


def _answer(status: int) -> bytes:
    body = orjson.dumps({"error": _MESSAGES[status], "violations": []})
    return b"".join([
        b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body])


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above (``timeout`` set by
    ``guarded_protocol``)."""

    timeout = DEFAULT_TIMEOUT
    keep_alive = DEFAULT_KEEP_ALIVE
    drain: Drain | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between requests or inside a request head
        self._head_bytes = 0
        self._head_size = 0
        self._header_count = 0
        self._refused: int | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._idle = False  # the deadline armed is the keep-alive one, between requests
        self._received_any = False
        self._discarding = False
        self._discarded = 0
        self._stopping = False  # uvicorn's shutdown asked this connection to end

    # Deadlines
    def _arm(self, seconds: float | None = None) -> None:
        self._disarm()
        self._idle = seconds is not None
        self._deadline = self.loop.call_later(
            self.timeout if seconds is None else seconds, self._expired)

    def _disarm(self) -> None:
        self._idle = False
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        waiting_body = not self._in_head and cycle is not None and cycle.more_body
        if waiting_body and cycle.response_started:
            self.transport.close()  # the application answered already: only stop waiting
        elif waiting_body or (self._in_head and self._received_any):
            self._refuse(408)
        elif self._in_head:
            self.transport.close()  # idle: nothing was asked
        if cycle is not None and waiting_body:
            cycle.disconnected = True
            cycle.message_event.set()

    def _refuse(self, status: int) -> None:
        """Answers ``status`` and closes after a short linger, reading and dropping what
        the client still sends: closing with unread data would reset the connection and
        the client could lose the answer."""
        log.info("HTTP %d to %s: %s", status, self.client, _MESSAGES[status])
        self._disarm()
        self._discarding = True
        self.transport.write(_answer(status))
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            self._discarded += len(data)
            if self._discarded > MAX_DISCARD_BYTES:
                self.transport.close()
            return
        self._received_any = True
        if self._idle:
            self._arm()  # the next request began: its head has ``timeout`` from now
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._refused is None and self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._refused = 431
        if self._refused is not None:
            self._refuse(self._refused)

    # httptools callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._grow(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._grow(len(name) + len(value) + 4)
        if self._header_count > MAX_HEADERS:
            self._refused = 431
        if self._refused is None:
            super().on_header(name, value)

    def _grow(self, size: int) -> None:
        # The exact size of the parsed head (``_head_bytes`` in data_received also counts
        # body bytes that came in the same chunk, so it only bounds an unfinished head).
        self._head_size += size
        if self._head_size > MAX_HEAD_BYTES:
            self._refused = 431

    def on_headers_complete(self) -> None:
        if self._refused is not None:
            return  # answered by data_received; the application never runs
        self._in_head = False
        self._head_bytes = 0
        self._arm()  # now the deadline of the body's next chunk
        super().on_headers_complete()
        if self._stopping or (self.drain is not None and self.drain.draining):
            self.cycle.keep_alive = False  # the answer says Connection: close

    def on_body(self, body: bytes) -> None:
        if self._refused is not None:
            return
        self._arm()
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused is not None:
            return
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._in_head = True
        self._received_any = False
        self._head_bytes = 0
        if not self.transport.is_closing():
            crowded = len(self.connections) > CROWDED_CONNECTIONS
            self._arm(min(self.keep_alive, CROWDED_KEEP_ALIVE) if crowded else self.keep_alive)


    # Shutdown
    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: the request in progress is answered and the
        connection closed after it; an idle connection is closed a moment later (uvicorn
        closed it at once, resetting a request the client had just sent)."""
        self._stopping = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
            return
        self.loop.call_later(IDLE_CLOSE_SECONDS, self._close_if_idle)

    def _close_if_idle(self) -> None:
        cycle = self.cycle
        busy = (cycle is not None and not cycle.response_complete) or (
            self._in_head and self._received_any)
        if not busy and not self.transport.is_closing():
            self.transport.close()
        # else: answered with Connection: close, or ended by the head's deadline


def guarded_protocol(timeout: float, *, keep_alive: float = DEFAULT_KEEP_ALIVE,
                     drain: Drain | None = None) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with ``timeout`` as its deadline and ``keep_alive`` as the
    idle limit between requests (seconds), and the gateway's ``drain`` (None: no drain,
    as the bench's bare app)."""
    return type("GuardedHttpTools", (GuardedHttpToolsProtocol,),
                {"timeout": timeout, "keep_alive": keep_alive, "drain": drain})
