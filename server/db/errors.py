"""Database failures that are nobody's input: the database is locked by another connection,
down, or dropped the connection. ``outage`` recognises them (at the one boundary that
turns lower-layer errors into ours: the gRPC interceptor, and the ingest writer), and
``unavailable`` words the one ``Unavailable`` a caller gets for them: what happened and
what to do."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from server.errors import Unavailable

__all__ = ["describe", "locked", "outage", "unavailable"]


def outage(exc: BaseException) -> bool:
    """True for a failure of the database itself rather than of the statement."""
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def locked(exc: BaseException) -> bool:
    """The failure is a lock another connection holds (SQLite busy, PostgreSQL lock_timeout)."""
    text = str(getattr(exc, "orig", exc)).lower()
    return "locked" in text or "busy" in text or "lock timeout" in text


def describe(exc: BaseException) -> str:
    """What happened, in a few words: ``the database is locked by another connection
    (database is locked)``."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = (detail[0] if detail else type(exc).__name__)[:160]
    if locked(exc):
        return f"the database is locked by another connection ({first})"
    if isinstance(exc, sa_exc.TimeoutError):
        return "no database connection was free in time (the database is slow or down)"
    return f"the database is unreachable or dropped the connection ({first})"


def unavailable(exc: BaseException, *, done: str = "the call did not complete") -> Unavailable:
    """The ``Unavailable`` for database failure ``exc``."""
    return Unavailable(f"{describe(exc)}; {done}: retry in a few seconds (if it goes on, "
                       "check the database server and what holds its locks)")
