"""The ingest writer process: one writer for every serving process of a server.

On SQLite, with a writer thread in each serving process the processes took turns on the
database's one write lock, each transaction small, and each thread had to win its own
process's GIL back from a busy event loop several times while holding the lock. On
PostgreSQL each serving process paid for its own round trips and async driver. Under
``python -m server`` a process of its own does all ingest writes instead: the serving
processes send their group-committed batches over a Unix socket (``frames``), the writer
commits everything that arrived while its previous transaction ran in one transaction,
and answers each batch with its event ids. Only then do the serving processes answer
their callers, so an acknowledged event is committed, as before. The writer also hands
the new events to the arq workers (``enqueue``, after the answers went out), which takes
the Redis round trip off the serving processes' event loops; the dispatch sweeper of the
serving processes still catches whatever that missed.

``python -m server.ingest.writer.process SOCKET_PATH``, its settings as JSON on stdin
(``supervisor`` starts it so).
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import sys
import threading

from server.config import Settings
from server.gctune import tune_gc
from server.ingest.model import ValidEvent
from server.ingest.writer.commit import CommitFailed, commit, dispatch_accounts
from server.ingest.writer.connections import IngestConnection, open_connection
from server.ingest.writer.enqueue import Enqueuer
from server.ingest.writer.frames import (
    FrameBuffer,
    decode_batch,
    encode_answer,
    encode_refusal,
)
from server.logs import setup_logging

__all__ = ["MODULE", "main", "serve"]

log = logging.getLogger(__name__)
MODULE = "server.ingest.writer.process"


class _Peer:
    __slots__ = ("frames", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames = FrameBuffer()


def _answers(conn: IngestConnection, batches: list[list[ValidEvent]]
             ) -> tuple[list[bytes], list[int]]:
    """One transaction for every batch: the answer frame of each batch, in order, and the
    accounts whose workers to wake."""
    events = [ev for batch in batches for ev in batch]
    try:
        results = commit(conn, events)
    except CommitFailed as exc:
        refusal = encode_refusal(exc.reason)
        return [refusal] * len(batches), []
    answers = []
    pos = 0
    for batch in batches:
        answers.append(encode_answer(results[pos:pos + len(batch)]))
        pos += len(batch)
    return answers, dispatch_accounts(events, results)


def _listen(path: str) -> socket.socket:
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(128)
    return listener


def serve(path: str, settings: Settings) -> None:
    """Commit the batches that arrive on ``path`` until SIGTERM."""
    conn = open_connection(settings)
    enqueuer = Enqueuer(settings)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    # Ctrl-C reaches the whole process group; the serving processes may still be finishing
    # their calls then, so only the parent's SIGTERM, sent after they ended, stops this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    listener = _listen(path)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    peers: dict[int, _Peer] = {}
    log.info("ingest writer listening on %s", path)

    def drop(peer: _Peer) -> None:
        sel.unregister(peer.sock)
        peers.pop(peer.sock.fileno(), None)
        peer.sock.close()

    try:
        while True:
            ready = sel.select(timeout=0.5)
            if not ready and (stopping.is_set() or os.getppid() != parent):
                return  # asked to stop, or orphaned: the server that started it is gone
            pending: list[tuple[_Peer, list[ValidEvent]]] = []
            for key, _mask in ready:
                if key.fileobj is listener:
                    sock, _ = listener.accept()
                    peers[sock.fileno()] = _Peer(sock)
                    sel.register(sock, selectors.EVENT_READ)
                    continue
                peer = peers[key.fd]
                try:
                    data = peer.sock.recv(1 << 20)
                except OSError:
                    data = b""
                if not data:
                    drop(peer)
                    continue
                try:
                    pending += [(peer, decode_batch(f)) for f in peer.frames.feed(data)]
                except (ValueError, TypeError) as exc:
                    log.error("dropping a connection that sent a malformed batch: %s", exc)
                    drop(peer)
            if not pending:
                continue
            answers, accounts = _answers(conn, [batch for _, batch in pending])
            for (peer, _), answer in zip(pending, answers):
                if peer.sock.fileno() < 0:
                    continue
                try:
                    peer.sock.sendall(answer)
                except OSError:
                    drop(peer)
            enqueuer.submit(accounts)
    finally:
        for peer in list(peers.values()):
            peer.sock.close()
        listener.close()
        if os.path.exists(path):
            os.unlink(path)
        enqueuer.stop()
        conn.close()


def main() -> None:
    settings = Settings.load()
    setup_logging(settings.log_level)
    tune_gc()
    try:
        serve(sys.argv[1], settings)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
