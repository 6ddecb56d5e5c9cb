"""ContactService: field definitions and contacts, thin methods over ``server.contacts``.

Bodies arrive as ``Struct`` in the eSputnik API form and are validated by the contacts
domain; its ``ContactValidationError`` goes to the interceptor like every domain error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import grpc
from google.protobuf import struct_pb2
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from eventflow.v1 import contacts_pb2, contacts_pb2_grpc
from server.api.emit import Emitter
from server.api.errors import current_account
from server.api.events import IngestDeps
from server.codec.values import value_to_py
from server.contacts import (
    FieldDefinition,
    normalise_email,
    normalise_phone,
    parse_api_form,
    parse_field_definition,
)
from server.contacts.batchcheck import BulkChecker
from server.contacts.bulk import (
    MAX_BULK_BYTES,
    BulkRaced,
    BulkResult,
    UpdateOnly,
    bulk_size_problem,
    bulk_upsert,
    contact_size_problem,
    dedupe_columns,
)
from server.contacts.errors import ViolationCollector
from server.contacts.fields_store import (
    create_field,
    delete_field,
    get_field,
    load_field_definitions,
    replace_field,
)
from server.contacts.forms import unwrap_api_form
from server.contacts.groups import (
    add_to_groups,
    group_members,
    groups_of,
    list_groups,
    parse_group_names,
    remove_from_groups,
)
from server.contacts.imports import load_import, record_import
from server.contacts.model import ContactData
from server.contacts.record import ContactRecord, contact_params
from server.contacts.store import (
    SEARCH_LIMIT,
    ContactSearch,
    delete_contact,
    get_contact,
    get_contacts,
    search_contacts,
    update_contact,
    upsert_contact,
)
from server.db.models import utcnow
from server.errors import Conflict, InvalidArgument, NotFound, TooLarge, Violation
from server.ingest.model import EventInput
from server.segments.queries import count_members, list_members
from server.segments.store import get_segment, list_segments, recount_reading_field
from server.workflows.segment_runs import contacts_changed_runs

__all__ = ["ContactService"]

Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]


# Serialized Struct bytes over JSON bytes at worst (small numbers take 9 bytes as a double
# and a few more for their tags), so anything the gateway accepts is accepted here.
_WIRE_FACTOR = 4


def _check_bulk_bytes(request: contacts_pb2.BulkUpsertContactsRequest) -> None:
    """Refuses a bulk larger than the contacts' size rules allow, before any entry is
    converted (serialized sizes are cheap to count; each entry is checked by ``_dict``)."""
    total = request.ByteSize()
    if total > _WIRE_FACTOR * MAX_BULK_BYTES:
        raise TooLarge(f"the bulk request is {total} bytes; at most "
                       f"{_WIRE_FACTOR * MAX_BULK_BYTES} (about {MAX_BULK_BYTES} as JSON)")


def _check_body_bytes(struct: struct_pb2.Struct, where: str) -> None:
    problem = contact_size_problem(struct.ByteSize() // _WIRE_FACTOR)
    if problem:
        raise TooLarge(f"{where} {problem} (counted as serialized size / {_WIRE_FACTOR})")


def _dict(struct: struct_pb2.Struct, where: str = "body") -> dict[str, Any]:
    """A body as plain JSON, refused first when larger than a contact may be."""
    _check_body_bytes(struct, where)
    return {key: value_to_py(value) for key, value in struct.fields.items()}


def _struct(body: dict[str, object]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(body)  # type: ignore[arg-type]
    return out


def _field(definition: FieldDefinition) -> contacts_pb2.FieldDefinition:
    body = definition.to_api_dict()
    out = contacts_pb2.FieldDefinition(
        id=definition.id or 0, name=definition.name, type=definition.type,
        allowed_values=list(definition.allowed_values), required=definition.required)
    if body["min"] is not None:
        out.min = str(body["min"])
    if body["max"] is not None:
        out.max = str(body["max"])
    return out


def _contact(record: ContactRecord, groups: list[tuple[int, str]]) -> contacts_pb2.Contact:
    return contacts_pb2.Contact(
        id=record.id, body=_struct(record.to_api_dict()), address_book_id=record.account_id,
        groups=[contacts_pb2.ContactGroup(id=gid, name=name, type="Static")
                for gid, name in groups])


async def _contacts(conn: AsyncConnection, records: list[ContactRecord]
                    ) -> list[contacts_pb2.Contact]:
    """The records as messages, each with its static groups (one query for all)."""
    if not records:
        return []
    groups = await groups_of(conn, account_id=records[0].account_id,
                             contact_ids=[r.id for r in records])
    return [_contact(r, groups.get(r.id, [])) for r in records]


def _positive(value: int, name: str = "id") -> int:
    if value <= 0:
        raise InvalidArgument.from_violations([Violation(name, "must be a positive number")])
    return value


def _criterion(check: ViolationCollector, name: str, text: str,
               reader: Callable[[object], object]) -> str | None:
    found = check.read(path=name, value=text, reader=reader) if text else None
    return None if found is None else str(found)


def _text(text: str) -> str | None:
    return text.strip() or None


def _bulk_result(result: BulkResult) -> contacts_pb2.BulkContactResult:
    return contacts_pb2.BulkContactResult(index=result.index, status=result.status,
                                          id=result.contact_id or 0, errors=list(result.errors))


_WRITTEN = ("CREATED", "UPDATED")
# A bulk that loses a race for a new contact to another call is tried again whole.
BULK_TRIES = 3


def _counts(results: Sequence[BulkResult]) -> dict[str, int]:
    ok = sum(result.status in _WRITTEN for result in results)
    return {"success_count": ok, "error_count": len(results) - ok}


def _new_contact_events(event_key: str, results: Sequence[BulkResult],
                        data: dict[int, ContactData]) -> list[EventInput]:
    """One event of ``event_key`` per contact the import created (an entry merged with
    earlier ones of the batch gives its contact one event, from its last entry)."""
    latest: dict[int, ContactData] = {}
    for result in results:
        if result.status == "CREATED" and result.contact_id:
            latest[result.contact_id] = data[result.index]
    events = []
    for contact_id, contact in latest.items():
        key = contact.email or contact.phone or str(contact_id)
        events.append(EventInput(event_type_key=event_key, key_value=key,
                                 params=contact_params(contact_id, contact)))
    return events


class ContactService(contacts_pb2_grpc.ContactServiceServicer):
    def __init__(self, deps: IngestDeps, checker: BulkChecker) -> None:
        self._engine = deps.engine
        self._checker = checker
        # The events of a bulk's eventKeyForNewContacts enter as every event does.
        self._emitter = Emitter(deps)

    async def ListFields(self, request: contacts_pb2.ListFieldsRequest, context: Ctx
                         ) -> contacts_pb2.ListFieldsResponse:
        async with self._engine.connect() as conn:
            fields = await load_field_definitions(conn, account_id=current_account.get())
        return contacts_pb2.ListFieldsResponse(fields=[_field(f) for f in fields.values()])

    async def GetField(self, request: contacts_pb2.GetFieldRequest, context: Ctx
                       ) -> contacts_pb2.FieldDefinition:
        async with self._engine.connect() as conn:
            return _field(await get_field(conn, account_id=current_account.get(),
                                          field_id=_positive(request.id)))

    async def CreateField(self, request: contacts_pb2.CreateFieldRequest, context: Ctx
                          ) -> contacts_pb2.FieldDefinition:
        definition = parse_field_definition(_dict(request.definition))
        async with self._engine.begin() as conn:
            return _field(await create_field(conn, account_id=current_account.get(),
                                             definition=definition))

    async def UpdateField(self, request: contacts_pb2.UpdateFieldRequest, context: Ctx
                          ) -> contacts_pb2.FieldDefinition:
        body = {**_dict(request.definition), "id": None}  # the id is the path's
        definition = parse_field_definition(body)
        async with self._engine.begin() as conn:
            return _field(await replace_field(conn, account_id=current_account.get(),
                                              field_id=_positive(request.id),
                                              definition=definition))

    async def DeleteField(self, request: contacts_pb2.DeleteFieldRequest, context: Ctx
                          ) -> contacts_pb2.DeleteFieldResponse:
        async with self._engine.begin() as conn:
            await delete_field(conn, account_id=current_account.get(),
                               field_id=_positive(request.id))
            # Every contact's value went with it: the segments reading it count again.
            await recount_reading_field(conn, account_id=current_account.get(),
                                        field_id=request.id)
        return contacts_pb2.DeleteFieldResponse()

    async def UpsertContact(self, request: contacts_pb2.UpsertContactRequest, context: Ctx
                            ) -> contacts_pb2.UpsertContactResponse:
        account_id = current_account.get()
        body, groups = unwrap_api_form(_dict(request.contact))
        async with self._engine.begin() as conn:
            fields = await load_field_definitions(conn, account_id=account_id)
            data = parse_api_form(body, fields=fields)
            contact_id = await upsert_contact(conn, account_id=account_id, data=data,
                                              source="api", fields=fields)
            await add_to_groups(conn, account_id=account_id, contact_ids=[contact_id],
                                names=groups)
            await contacts_changed_runs(conn, account_id=account_id, contact_ids=[contact_id],
                                        now=utcnow())
        return contacts_pb2.UpsertContactResponse(id=contact_id)

    async def GetContact(self, request: contacts_pb2.GetContactRequest, context: Ctx
                         ) -> contacts_pb2.Contact:
        async with self._engine.connect() as conn:
            record = await get_contact(conn, account_id=current_account.get(),
                                       contact_id=_positive(request.id))
            if record is None:
                raise NotFound(f"no contact with id {request.id} in this account")
            (contact,) = await _contacts(conn, [record])
        return contact

    async def UpdateContact(self, request: contacts_pb2.UpdateContactRequest, context: Ctx
                            ) -> contacts_pb2.Contact:
        account_id, contact_id = current_account.get(), _positive(request.id)
        body, groups = unwrap_api_form(_dict(request.contact))
        async with self._engine.begin() as conn:
            fields = await load_field_definitions(conn, account_id=account_id)
            data = parse_api_form({**body, "id": contact_id}, fields=fields)
            if await update_contact(conn, account_id=account_id, data=data) is None:
                raise NotFound(f"no contact with id {contact_id} in this account")
            await add_to_groups(conn, account_id=account_id, contact_ids=[contact_id],
                                names=groups)
            await contacts_changed_runs(conn, account_id=account_id, contact_ids=[contact_id],
                                        now=utcnow())
            record = await get_contact(conn, account_id=account_id, contact_id=contact_id)
            assert record is not None
            (contact,) = await _contacts(conn, [record])
        return contact

    async def DeleteContact(self, request: contacts_pb2.DeleteContactRequest, context: Ctx
                            ) -> contacts_pb2.DeleteContactResponse:
        account_id, contact_id = current_account.get(), _positive(request.id)
        async with self._engine.begin() as conn:
            await delete_contact(conn, account_id=account_id, contact_id=contact_id,
                                 remember=True)
            await contacts_changed_runs(conn, account_id=account_id, contact_ids=[contact_id],
                                        now=utcnow(), reason="contact deleted")
        return contacts_pb2.DeleteContactResponse()

    async def SearchContacts(self, request: contacts_pb2.SearchContactsRequest, context: Ctx
                             ) -> contacts_pb2.SearchContactsResponse:
        check = ViolationCollector()
        email = _criterion(check, "email", request.email, normalise_email)
        phone = _criterion(check, "phone", request.phone, normalise_phone)
        check.raise_if_any()
        # PostgreSQL refuses a negative LIMIT or OFFSET (was INTERNAL).
        if request.limit < 0:
            raise InvalidArgument.from_violations([Violation("limit", "must not be negative")])
        if request.offset < 0:
            raise InvalidArgument.from_violations([Violation("offset", "must not be negative")])
        limit = min(request.limit or SEARCH_LIMIT, SEARCH_LIMIT)
        search = ContactSearch(
            email=email, phone=phone, external_customer_id=_text(request.external_customer_id),
            contact_key=_text(request.contact_key), first_name=_text(request.first_name),
            last_name=_text(request.last_name))
        async with self._engine.connect() as conn:
            records, total = await search_contacts(conn, account_id=current_account.get(),
                                                   search=search, offset=request.offset,
                                                   limit=limit)
            contacts = await _contacts(conn, records)
        return contacts_pb2.SearchContactsResponse(contacts=contacts, total_count=total)

    async def BulkUpsertContacts(self, request: contacts_pb2.BulkUpsertContactsRequest,
                                 context: Ctx) -> contacts_pb2.BulkUpsertContactsResponse:
        dedupe_on = request.dedupe_on or "email"
        problems = []
        if dedupe_columns(dedupe_on) is None:
            problems.append(Violation("dedupeOn", f"{dedupe_on!r} is not one of email, sms, "
                                      "email_or_sms, externalCustomerId, contactKey, id"))
        too_many = bulk_size_problem(len(request.contacts))
        if too_many:
            problems.append(Violation("contacts", too_many))
        if problems:
            raise InvalidArgument.from_violations(problems)
        _check_bulk_bytes(request)
        groups = parse_group_names(list(request.group_names), name="groupNames")
        leave = parse_group_names(list(request.exclude_group_names), name="groupNamesExclude")
        both = [Violation(f"groupNamesExclude[{i}]", f"{name!r} is in groupNames too")
                for i, name in enumerate(leave) if name in groups]
        if both:
            raise InvalidArgument.from_violations(both)
        event_key = request.event_key_for_new_contacts.strip()
        update_only = UpdateOnly.parse(
            contact_fields=list(request.contact_fields) if request.limit_contact_fields else None,
            custom_field_ids=(list(request.custom_field_ids) if request.limit_custom_fields
                              else None))
        account_id = current_account.get()
        if event_key:
            await self._check_event_key(event_key, account_id)
        entries = []
        for index, struct in enumerate(request.contacts):
            _check_body_bytes(struct, f"contacts[{index}]")
            entries.append(struct.SerializeToString())
        for attempt in range(1, BULK_TRIES + 1):
            try:
                async with self._engine.begin() as conn:
                    fields = await load_field_definitions(conn, account_id=account_id)
                    items, results = [], []
                    # Validation is CPU work: in the checker's process for large bulks.
                    for index, checked in enumerate(await self._checker.check(entries, fields)):
                        if isinstance(checked, tuple):
                            results.append(BulkResult(index=index, status="INVALID",
                                                      errors=checked))
                        else:
                            items.append((index, checked))
                    results += await bulk_upsert(conn, account_id=account_id, items=items,
                                                 dedupe_on=dedupe_on, fields=fields,
                                                 update_only=update_only,
                                                 restore_deleted=request.restore_deleted)
                    results.sort(key=lambda result: result.index)
                    written = [r.contact_id for r in results
                               if r.status in _WRITTEN and r.contact_id]
                    await add_to_groups(conn, account_id=account_id, names=groups,
                                        contact_ids=written)
                    await remove_from_groups(conn, account_id=account_id, names=leave,
                                             contact_ids=written)
                    session_id = await record_import(conn, account_id=account_id,
                                                     results=results)
                    await contacts_changed_runs(
                        conn, account_id=account_id, now=utcnow(),
                        contact_ids=[r.contact_id for r in results if r.contact_id is not None])
                break
            except (IntegrityError, BulkRaced):
                # Another call created some of these contacts (or took one of their
                # identifiers) after this one looked: nothing of this attempt is kept, and
                # the next finds them stored and updates them, as a later bulk would.
                if attempt == BULK_TRIES:
                    raise Conflict(f"other calls kept creating these contacts at the same "
                                   f"moment ({BULK_TRIES} tries); send the bulk again") from None
        event_ids = await self._emitter.emit(
            _new_contact_events(event_key, results, dict(items)) if event_key else [],
            account_id=account_id)
        return contacts_pb2.BulkUpsertContactsResponse(
            results=[_bulk_result(r) for r in results], session_id=session_id,
            event_ids=event_ids, **_counts(results))

    async def _check_event_key(self, event_key: str, account_id: int) -> None:
        """An eventKeyForNewContacts its events would be refused for is refused first,
        naming it, before anything is written."""
        probe = EventInput(event_type_key=event_key, key_value="probe@example.com",
                           params=[("contactId", 1)])
        try:
            await self._emitter.check(probe, account_id=account_id)
        except InvalidArgument as error:
            raise InvalidArgument.from_violations([Violation(
                "eventKeyForNewContacts", "; ".join(v.message for v in error.violations)
                or error.message)]) from None

    async def ListGroups(self, request: contacts_pb2.ListGroupsRequest, context: Ctx
                         ) -> contacts_pb2.ListGroupsResponse:
        account_id = current_account.get()
        async with self._engine.connect() as conn:
            static = await list_groups(conn, account_id=account_id)
            segments = await list_segments(conn, account_id=account_id)
        out = contacts_pb2.ListGroupsResponse()
        for gid, name in static:
            out.groups.add(id=gid, name=name, type="Static")
        for segment in segments:
            out.groups.add(id=segment.id, name=segment.name, type="Dynamic")
        return out

    async def ListGroupContacts(self, request: contacts_pb2.ListGroupContactsRequest,
                                context: Ctx) -> contacts_pb2.SearchContactsResponse:
        problems = [Violation(name, "must not be negative")
                    for name, value in (("offset", request.offset), ("limit", request.limit))
                    if value < 0]
        if problems:
            raise InvalidArgument.from_violations(problems)
        account_id, group_id = current_account.get(), _positive(request.group_id, "group_id")
        offset, limit = request.offset, min(request.limit or SEARCH_LIMIT, SEARCH_LIMIT)
        async with self._engine.connect() as conn:
            page = await group_members(conn, account_id=account_id, group_id=group_id,
                                       offset=offset, limit=limit)
            if page is None and await get_segment(conn, account_id=account_id,
                                                  segment_id=group_id) is not None:
                members = await list_members(conn, segment_id=group_id, offset=offset,
                                             limit=limit)
                page = ([m.contact_id for m in members],
                        await count_members(conn, segment_id=group_id))
            if page is None:
                raise NotFound(f"no group with id {group_id} in this account")
            ids, total = page
            records = await get_contacts(conn, account_id=account_id, contact_ids=ids)
            contacts = await _contacts(conn, records)
        return contacts_pb2.SearchContactsResponse(contacts=contacts, total_count=total)

    async def GetImportStatus(self, request: contacts_pb2.GetImportStatusRequest,
                              context: Ctx) -> contacts_pb2.ImportStatus:
        async with self._engine.connect() as conn:
            found = await load_import(conn, account_id=current_account.get(),
                                      session_id=request.session_id.strip())
        if found is None:
            raise NotFound(f"no import session {request.session_id!r} in this account "
                           "(sessions are kept 7 days)")
        counts = _counts(found.results)
        out = contacts_pb2.ImportStatus(
            session_id=found.session_id, status=found.status,
            results=[_bulk_result(r) for r in found.results],
            success_count=counts["success_count"], error_count=counts["error_count"])
        out.created_at.FromDatetime(found.created_at)
        return out
