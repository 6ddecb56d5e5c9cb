"""Validation of a bulk's entries in a helper process, away from the serving loop.

Reading 3,000 contacts (email-validator, phonenumbers) takes a second or more of CPU; on
the event loop it would hold every other caller of the process for that long. Large bulks
are validated in a child process (one per serving process, started on first use, at a
lower CPU priority); small ones inline. The work a bulk can cause is bounded before it
gets here by the size rules of ``server.contacts.bulk``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeAlias

from google.protobuf import struct_pb2

from server.codec.values import value_to_py
from server.contacts.definitions import FieldDefinition
from server.contacts.forms import parse_api_form
from server.contacts.model import ContactData
from server.errors import ContactValidationError
from server.procs import lower_priority

__all__ = ["INLINE_MAX", "BulkChecker", "Checked", "check_entries"]

# Up to this many entries are validated on the loop (a few milliseconds each at most).
INLINE_MAX = 20
# An entry's result: its data, or the messages of its violations.
Checked: TypeAlias = "ContactData | tuple[str, ...]"


def check_entries(entries: Sequence[bytes],
                  fields: Mapping[int, FieldDefinition]) -> list[Checked]:
    """``parse_api_form`` of each entry (a serialized ``Struct``: bytes cross processes
    cheaply, and decoding them is part of the work taken off the loop), a failure as its
    messages (exceptions that carry violations do not cross processes; plain data does)."""
    out: list[Checked] = []
    for raw in entries:
        struct = struct_pb2.Struct.FromString(raw)
        entry = {key: value_to_py(value) for key, value in struct.fields.items()}
        try:
            out.append(parse_api_form(entry, fields=fields))
        except ContactValidationError as error:
            out.append(tuple(map(str, error.violations)))
    return out


class BulkChecker:
    """Validates bulk entries inline or in the child process."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def check(self, entries: Sequence[bytes],
                    fields: Mapping[int, FieldDefinition]) -> list[Checked]:
        if len(entries) <= INLINE_MAX:
            return check_entries(entries, fields)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=lower_priority)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, check_entries, list(entries),
                                              dict(fields))
        except BrokenProcessPool:
            # The child died (killed from outside): a new one for the next bulk; this
            # bulk is checked here rather than refused.
            self._pool = None
            return check_entries(entries, fields)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
