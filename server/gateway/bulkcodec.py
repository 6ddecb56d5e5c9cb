"""A bulk contacts body to its gRPC request bytes, in a helper process for large bodies.

Parsing and converting a body of several MB (hundreds of thousands of JSON values) takes
the CPU for a few hundred milliseconds; on the gateway's loop every other caller would
wait that long. Bodies over ``INLINE_BYTES`` are handed, as bytes, to one child process
of the gateway, which answers with the serialized ``BulkUpsertContactsRequest`` (or the
refusal), so the loop only moves bytes. The size rules come first either way: the body
is at most ``MAX_BULK_BYTES`` (checked while it is read), then counted and measured
before any entry is converted.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import orjson

from eventflow.v1 import contacts_pb2
from server.contacts.bulk import bulk_size_problem, contact_size_problem
from server.contacts.group_names import parse_group_names
from server.errors import EventflowError, InvalidArgument, TooLarge, Violation
from server.gateway.http import json_struct, parse_json
from server.members import only_members
from server.procs import lower_priority

__all__ = ["INLINE_BYTES", "BulkEncoder", "bulk_request", "encode"]

# Bodies up to this size are converted on the loop (a few milliseconds at most).
INLINE_BYTES = 64 * 1024
# The top-level members of a bulk body: eSputnik's ContactsBulkUpdate (fieldId only as
# null: deduplicating on an additional field is not offered; docs/compatibility.md).
BULK_MEMBERS = ("contacts", "dedupeOn", "fieldId", "groupNames", "groupNamesExclude",
                "contactFields", "customFieldsIDs", "customFieldsIds", "restoreDeleted",
                "eventKeyForNewContacts")


def _item_of(value: Any, kind: type) -> bool:
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def _names(doc: dict[str, Any], name: str, kind: type) -> list[Any] | None:
    """The list member ``name`` of items of ``kind`` (None when absent or null)."""
    value = doc.get(name)
    # An empty list is "not limited", as when absent: clients send [] by default.
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(_item_of(v, kind) for v in value):
        what = "strings" if kind is str else "field ids (positive whole numbers)"
        raise InvalidArgument.from_violations([Violation(name, f"must be a list of {what}")])
    return value


def _flag(doc: dict[str, Any], name: str) -> bool:
    value = doc.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument.from_violations([Violation(name, "must be true or false")])
    return bool(value)


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidArgument.from_violations([Violation(name, "must be a string")])
    return (value or "").strip()


def bulk_request(doc: Any) -> contacts_pb2.BulkUpsertContactsRequest:
    """The gRPC request of a parsed bulk body; its count and each entry's size are
    checked before that entry is converted."""
    if isinstance(doc, list):
        doc = {"contacts": doc}
    if isinstance(doc, dict):
        only_members(doc, BULK_MEMBERS)
    if not isinstance(doc, dict) or not isinstance(doc.get("contacts"), list):
        raise InvalidArgument.from_violations([Violation(
            "contacts", "is required: send {\"contacts\": [...], \"dedupeOn\": \"email\"}")])
    dedupe = doc.get("dedupeOn") or "email"
    if not isinstance(dedupe, str):
        raise InvalidArgument.from_violations([Violation("dedupeOn", "must be a string")])
    contacts = doc["contacts"]
    problem = bulk_size_problem(len(contacts))
    if problem:
        raise InvalidArgument.from_violations([Violation("contacts", problem)])
    request = contacts_pb2.BulkUpsertContactsRequest(
        dedupe_on=dedupe, group_names=parse_group_names(doc.get("groupNames"), name="groupNames"),
        exclude_group_names=parse_group_names(doc.get("groupNamesExclude"),
                                              name="groupNamesExclude"),
        restore_deleted=_flag(doc, "restoreDeleted"),
        event_key_for_new_contacts=_text(doc, "eventKeyForNewContacts"))
    if doc.get("fieldId") is not None:
        raise InvalidArgument.from_violations([Violation(
            "fieldId", "deduplicating on an additional field is not supported; send null and "
            "a dedupeOn of email, sms, externalCustomerId, contactKey or id")])
    # A PHP client's form spells it customFieldsIds: the same member.
    ids_name = "customFieldsIds" if "customFieldsIds" in doc else "customFieldsIDs"
    if "customFieldsIds" in doc and "customFieldsIDs" in doc:
        raise InvalidArgument.from_violations([Violation(
            "customFieldsIds", "send customFieldsIDs or customFieldsIds, not both")])
    contact_fields, field_ids = _names(doc, "contactFields", str), _names(doc, ids_name, int)
    if contact_fields is not None:
        request.contact_fields.extend(contact_fields)
        request.limit_contact_fields = True
    if field_ids is not None:
        request.custom_field_ids.extend(field_ids)
        request.limit_custom_fields = True
    for index, item in enumerate(contacts):
        problem = contact_size_problem(len(orjson.dumps(item)))
        if problem:
            raise TooLarge(f"contacts[{index}] {problem}")
        request.contacts.append(json_struct(item, f"contacts[{index}]"))
    return request


def encode(raw: bytes) -> tuple[str, Any]:
    """``("ok", request bytes)`` or the refusal as plain data (exceptions that carry
    violations do not survive pickling whole): ``(kind, (message, [(field, message)]))``."""
    try:
        return "ok", bulk_request(parse_json(raw)).SerializeToString()
    except TooLarge as error:
        return "too_large", (error.message, [])
    except InvalidArgument as error:
        return "invalid", (error.message, [(v.field, v.message) for v in error.violations])


def _refusal(kind: str, detail: Any) -> EventflowError:
    message, violations = detail
    if kind == "too_large":
        return TooLarge(message)
    return InvalidArgument(message, [Violation(field, text) for field, text in violations])


class BulkEncoder:
    """Encodes bulk bodies inline when small, in the gateway's helper process otherwise."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def encode(self, raw: bytes) -> bytes:
        if len(raw) <= INLINE_BYTES:
            kind, detail = encode(raw)
        else:
            kind, detail = await self._in_child(raw)
        if kind != "ok":
            raise _refusal(kind, detail)
        out: bytes = detail
        return out

    async def _in_child(self, raw: bytes) -> tuple[str, Any]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=lower_priority)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, encode, raw)
        except BrokenProcessPool:
            self._pool = None  # the child was killed: a new one next time, this one inline
            return encode(raw)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
