"""Transport-free shape of one incoming event, shared by gRPC and the HTTP gateway."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSON = Any  # a decoded JSON value: str, int, float, bool, None, list or dict


@dataclass(slots=True)
class EventInput:
    """An event as the caller sent it, decoded (``server.codec``: shape and nesting depth
    checked), before acceptance (``server.ingest.accept``)."""

    event_type_key: str
    key_value: str = ""
    # (name, value) pairs in order; value ``MISSING`` marks an entry without a value.
    params: list[tuple[str, JSON]] = field(default_factory=list)
    message_id: str = ""
    occurred: datetime | None = None
    legacy_v1: bool = False


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(slots=True)
class ValidEvent:
    """An event that passed every rule, ready to be written."""

    account_id: int
    event_type_key: str
    key_value: str
    body: str  # canonical JSON of {"eventTypeKey", "keyValue", "params"}
    message_id: str | None
    occurred: datetime | None
    # (name, JSON type) of each param, for the recorded structure (server.eventtypes.shapes).
    param_types: Sequence[Sequence[str]] = ()


@dataclass(slots=True)
class WriteResult:
    event_id: int
    duplicate: bool = False
