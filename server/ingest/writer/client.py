"""A serving process's connection to the ingest writer process (asyncio, one socket).

Batches go out as they come; the answers come back in the same order, so each one is
matched to the oldest waiting batch. When the connection breaks, every waiting batch is
told its outcome is unknown (a retry with the same messageId is safe); the next batch
connects again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from server.errors import Unavailable
from server.ingest.model import ValidEvent, WriteResult
from server.ingest.writer.commit import CommitFailed
from server.ingest.writer.frames import HEADER, decode_answer, encode_batch

__all__ = ["WriterClient"]

GONE = ("the ingest writer process went away during the write; the events may or may not "
        "be stored: retry with the same messageId so that a stored one is not stored twice")


class WriterClient:
    def __init__(self, path: str) -> None:
        self._path = path
        self._stream: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiting: deque[asyncio.Future[list[WriteResult]]] = deque()

    async def _connect(self) -> asyncio.StreamWriter:
        try:
            reader, stream = await asyncio.open_unix_connection(self._path)
        except OSError as exc:
            raise Unavailable(f"the ingest writer process is not answering at {self._path} "
                              f"({exc.strerror or exc}); nothing was stored, retry") from None
        self._stream = stream
        self._reader_task = asyncio.create_task(self._read(reader, stream),
                                                name="ingest-writer-answers")
        return stream

    async def commit(self, events: Sequence[ValidEvent]) -> list[WriteResult]:
        """The writer process's results for ``events``; Unavailable if it stored nothing
        or went away."""
        stream = self._stream or await self._connect()
        future: asyncio.Future[list[WriteResult]] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        stream.write(encode_batch(events))
        return await future

    async def _read(self, reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                answer = decode_answer(await reader.readexactly(size))
                future = self._waiting.popleft()
                if future.done():
                    continue
                if isinstance(answer, str):
                    future.set_exception(CommitFailed(answer).unavailable())
                else:
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, OSError, IndexError, KeyError, TypeError,
                ValueError):  # a broken connection or answer: the writer is gone
            pass
        finally:
            if self._stream is stream:
                self._stream = None
            stream.close()
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(Unavailable(GONE))

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        if self._reader_task is not None:
            try:
                await self._reader_task
            except asyncio.CancelledError:
                pass
