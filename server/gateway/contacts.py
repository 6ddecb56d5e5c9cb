"""Contact routes (eSputnik-compatible): ``/api/v1/contact``, ``/api/v1/contacts``,
``/api/v1/importstatus/{sessionId}`` and the additional field definitions
``/api/v1/fields``. Bodies pass to ContactService as Struct; the server validates them,
so these handlers only shape requests and answers: eSputnik's contact shape (``full=true``
for the whole record), its texts for update and delete, its bulk session, its search
parameters and ``TotalCount``; a query parameter a route does not know is a 400.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from eventflow.v1 import contacts_pb2, contacts_pb2_grpc
from server.codec.values import value_to_py
from server.contacts.bulk import (
    MAX_BULK_BYTES,
    MAX_CONTACT_BYTES,
)
from server.gateway.bulkcodec import BulkEncoder
from server.gateway.consent import deleted_text
from server.gateway.http import (
    auth_metadata,
    endpoint,
    json_response,
    json_struct,
    path_id,
    read_body,
    read_json,
)
from server.gateway.params import only_query, page_of, query_bool
from server.gateway.state import GatewayState

# Bodies are refused past these before they are read whole (Content-Length) or as soon
# as the stream passes them; server/contacts/bulk.py explains the figures.
MAX_CONTACT_BODY = MAX_CONTACT_BYTES
MAX_BULK_BODY = MAX_BULK_BYTES
BULK_METHOD = "/eventflow.v1.ContactService/BulkUpsertContacts"
# eSputnik's search parameters (sms and our phone are one), its paging, and ours.
SEARCH_QUERY = ("email", "sms", "phone", "externalCustomerId", "contactKey", "firstname",
                "lastname", "startindex", "maxrows", "full")
# The members of eSputnik's contact sample, in its order; full=true answers the record.
ESPUTNIK_MEMBERS = ("id", "firstName", "lastName", "channels", "addressBookId", "groups",
                    "fields")


def _plain(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {key: value_to_py(value) for key, value in struct.fields.items()}


def contact_json(contact: contacts_pb2.Contact, *, full: bool = False) -> dict[str, Any]:
    """A contact as eSputnik answers it, or (``full``) the whole record with its groups."""
    body = _plain(contact.body)
    body["addressBookId"] = contact.address_book_id
    body["groups"] = [{"id": g.id, "name": g.name, "type": g.type} for g in contact.groups]
    if full:
        return body
    shaped = {name: body.get(name) for name in ESPUTNIK_MEMBERS}
    shaped["channels"] = body.get("channels", [])
    shaped["fields"] = body.get("fields", [])
    return shaped


def updated_text(contact_id: int) -> PlainTextResponse:
    """eSputnik's answer to an updated contact, which clients compare verbatim."""
    return PlainTextResponse(f"Contact with id='{contact_id}' has been updated")


def _bulk_results(results: Any) -> list[dict[str, Any]]:
    return [{"index": r.index, "status": r.status, "id": r.id or None, "errors": list(r.errors)}
            for r in results]


def _failed(results: Any) -> list[dict[str, Any]]:
    return [r for r in _bulk_results(results) if r["status"] not in ("CREATED", "UPDATED")]


def _field(definition: contacts_pb2.FieldDefinition) -> dict[str, Any]:
    return {"id": definition.id, "name": definition.name, "type": definition.type,
            "allowedValues": list(definition.allowed_values),
            "min": _bound(definition, "min"), "max": _bound(definition, "max"),
            "required": definition.required}


def _bound(definition: contacts_pb2.FieldDefinition, name: str) -> Any:
    if not definition.HasField(name):
        return None
    text = getattr(definition, name)
    return int(text) if definition.type == "number" else text


def routes(state: GatewayState) -> list[Route]:
    def stub() -> contacts_pb2_grpc.ContactServiceStub:
        return state.stub(contacts_pb2_grpc.ContactServiceStub)

    @endpoint
    async def list_fields(request: Request) -> Response:
        reply = await stub().ListFields(contacts_pb2.ListFieldsRequest(),
                                        metadata=auth_metadata(request))
        return json_response([_field(f) for f in reply.fields])

    @endpoint
    async def create_field(request: Request) -> Response:
        meta = auth_metadata(request)
        body = json_struct(await read_json(request, limit=MAX_CONTACT_BODY))
        reply = await stub().CreateField(contacts_pb2.CreateFieldRequest(definition=body),
                                         metadata=meta)
        return json_response(_field(reply))

    @endpoint
    async def get_field(request: Request) -> Response:
        reply = await stub().GetField(contacts_pb2.GetFieldRequest(id=path_id(request, "item_id")),
                                      metadata=auth_metadata(request))
        return json_response(_field(reply))

    @endpoint
    async def put_field(request: Request) -> Response:
        meta = auth_metadata(request)
        body = json_struct(await read_json(request, limit=MAX_CONTACT_BODY))
        reply = await stub().UpdateField(
            contacts_pb2.UpdateFieldRequest(id=path_id(request, "item_id"), definition=body), metadata=meta)
        return json_response(_field(reply))

    @endpoint
    async def delete_field(request: Request) -> Response:
        await stub().DeleteField(contacts_pb2.DeleteFieldRequest(id=path_id(request, "item_id")),
                                 metadata=auth_metadata(request))
        return Response(status_code=200)

    @endpoint
    async def upsert_contact(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        body = json_struct(await read_json(request, limit=MAX_CONTACT_BODY))
        reply = await stub().UpsertContact(contacts_pb2.UpsertContactRequest(contact=body),
                                           metadata=meta)
        return json_response({"id": reply.id})

    @endpoint
    async def get_contact(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ("full",))
        reply = await stub().GetContact(contacts_pb2.GetContactRequest(id=path_id(request, "item_id")),
                                        metadata=meta)
        return json_response(contact_json(reply, full=query_bool(request, "full")))

    @endpoint
    async def put_contact(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        contact_id = path_id(request, "item_id")
        body = json_struct(await read_json(request, limit=MAX_CONTACT_BODY))
        await stub().UpdateContact(
            contacts_pb2.UpdateContactRequest(id=contact_id, contact=body), metadata=meta)
        return updated_text(contact_id)

    @endpoint
    async def delete_contact(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        contact_id = path_id(request, "item_id")
        await stub().DeleteContact(contacts_pb2.DeleteContactRequest(id=contact_id), metadata=meta)
        return deleted_text(contact_id)

    @endpoint
    async def search(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, SEARCH_QUERY)
        query = request.query_params
        offset, limit = page_of(request)
        reply = await stub().SearchContacts(contacts_pb2.SearchContactsRequest(
            email=query.get("email", ""), phone=query.get("sms") or query.get("phone", ""),
            external_customer_id=query.get("externalCustomerId", ""),
            contact_key=query.get("contactKey", ""), first_name=query.get("firstname", ""),
            last_name=query.get("lastname", ""), offset=offset, limit=limit), metadata=meta)
        full = query_bool(request, "full")
        return json_response([contact_json(c, full=full) for c in reply.contacts],
                             headers={"TotalCount": str(reply.total_count)})

    encoder = BulkEncoder()
    state.closing.append(encoder.close)
    # BulkUpsertContacts taking the serialized request the encoder made.
    raw_bulk = state.channel_call(BULK_METHOD, contacts_pb2.BulkUpsertContactsResponse)

    @endpoint
    async def bulk(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ("results",))
        headers = request.headers
        raw = await read_body(request.receive, content_type=headers.get("content-type"),
                              content_length=headers.get("content-length"), limit=MAX_BULK_BODY)
        reply = await raw_bulk()(await encoder.encode(raw), metadata=meta)
        if query_bool(request, "results"):
            return json_response({
                "asyncSessionId": reply.session_id, "results": _bulk_results(reply.results),
                "successCount": reply.success_count, "errorCount": reply.error_count})
        answer: dict[str, Any] = {"asyncSessionId": reply.session_id}
        failed = _failed(reply.results)
        if failed:
            answer["failedContacts"] = failed
        return json_response(answer)

    @endpoint
    async def import_status(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        reply = await stub().GetImportStatus(contacts_pb2.GetImportStatusRequest(
            session_id=request.path_params["session_id"]), metadata=meta)
        return json_response({
            "asyncSessionId": reply.session_id, "status": reply.status, "error": None,
            "createdAt": reply.created_at.ToDatetime().isoformat(timespec="milliseconds") + "Z",
            "successCount": reply.success_count, "errorCount": reply.error_count,
            "failedContacts": _failed(reply.results), "results": _bulk_results(reply.results)})

    @endpoint
    async def groups(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        reply = await stub().ListGroups(contacts_pb2.ListGroupsRequest(), metadata=meta)
        return json_response([{"id": g.id, "name": g.name, "type": g.type}
                              for g in reply.groups])

    @endpoint
    async def group_contacts(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ("startindex", "maxrows", "full"))
        offset, limit = page_of(request)
        reply = await stub().ListGroupContacts(contacts_pb2.ListGroupContactsRequest(
            group_id=path_id(request, "group_id"), offset=offset, limit=limit), metadata=meta)
        full = query_bool(request, "full")
        return json_response([contact_json(c, full=full) for c in reply.contacts],
                             headers={"TotalCount": str(reply.total_count)})

    return [
        Route("/api/v1/fields", list_fields, methods=["GET"]),
        Route("/api/v1/fields", create_field, methods=["POST"]),
        Route("/api/v1/fields/{item_id}", get_field, methods=["GET"]),
        Route("/api/v1/fields/{item_id}", put_field, methods=["PUT"]),
        Route("/api/v1/fields/{item_id}", delete_field, methods=["DELETE"]),
        Route("/api/v1/contact", upsert_contact, methods=["POST"]),
        Route("/api/v1/contact/{item_id}", get_contact, methods=["GET"]),
        Route("/api/v1/contact/{item_id}", put_contact, methods=["PUT"]),
        Route("/api/v1/contact/{item_id}", delete_contact, methods=["DELETE"]),
        Route("/api/v1/contacts", search, methods=["GET"]),
        Route("/api/v1/contacts", bulk, methods=["POST"]),
        Route("/api/v1/importstatus/{session_id}", import_status, methods=["GET"]),
        Route("/api/v1/groups", groups, methods=["GET"]),
        Route("/api/v1/group/{group_id}/contacts", group_contacts, methods=["GET"]),
    ]
