"""Contact routes (eSputnik-compatible): ``/api/v1/contact``, ``/api/v1/contacts`` and the
additional field definitions ``/api/v1/fields``. Bodies pass to ContactService as Struct;
the server validates them, so these handlers only shape requests and answers.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import contacts_pb2, contacts_pb2_grpc
from server.codec.values import value_to_py
from server.contacts.bulk import (
    MAX_BULK_BYTES,
    MAX_CONTACT_BYTES,
)
from server.gateway.bulkcodec import BulkEncoder
from server.gateway.http import (
    INT32_MAX,
    auth_metadata,
    endpoint,
    json_response,
    json_struct,
    path_id,
    query_number,
    read_body,
    read_json,
)
from server.gateway.state import GatewayState

# Bodies are refused past these before they are read whole (Content-Length) or as soon
# as the stream passes them; server/contacts/bulk.py explains the figures.
MAX_CONTACT_BODY = MAX_CONTACT_BYTES
MAX_BULK_BODY = MAX_BULK_BYTES
BULK_METHOD = "/eventflow.v1.ContactService/BulkUpsertContacts"


def _plain(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {key: value_to_py(value) for key, value in struct.fields.items()}


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
        body = json_struct(await read_json(request, limit=MAX_CONTACT_BODY))
        reply = await stub().UpsertContact(contacts_pb2.UpsertContactRequest(contact=body),
                                           metadata=meta)
        return json_response({"id": reply.id})

    @endpoint
    async def get_contact(request: Request) -> Response:
        reply = await stub().GetContact(contacts_pb2.GetContactRequest(id=path_id(request, "item_id")),
                                        metadata=auth_metadata(request))
        return json_response(_plain(reply.body))

    @endpoint
    async def put_contact(request: Request) -> Response:
        meta = auth_metadata(request)
        body = json_struct(await read_json(request, limit=MAX_CONTACT_BODY))
        reply = await stub().UpdateContact(
            contacts_pb2.UpdateContactRequest(id=path_id(request, "item_id"), contact=body), metadata=meta)
        return json_response(_plain(reply.body))

    @endpoint
    async def delete_contact(request: Request) -> Response:
        await stub().DeleteContact(contacts_pb2.DeleteContactRequest(id=path_id(request, "item_id")),
                                   metadata=auth_metadata(request))
        return Response(status_code=200)

    @endpoint
    async def search(request: Request) -> Response:
        query = request.query_params
        limit = query_number(request, "maxrows", "limit", most=INT32_MAX)
        reply = await stub().SearchContacts(contacts_pb2.SearchContactsRequest(
            email=query.get("email", ""), phone=query.get("phone") or query.get("sms", ""),
            external_customer_id=query.get("externalCustomerId", ""), limit=limit),
            metadata=auth_metadata(request))
        return json_response([_plain(c.body) for c in reply.contacts])

    encoder = BulkEncoder()
    state.closing.append(encoder.close)
    # BulkUpsertContacts taking the serialized request the encoder made.
    raw_bulk = state.channel_call(BULK_METHOD, contacts_pb2.BulkUpsertContactsResponse)

    @endpoint
    async def bulk(request: Request) -> Response:
        meta = auth_metadata(request)
        headers = request.headers
        raw = await read_body(request.receive, content_type=headers.get("content-type"),
                              content_length=headers.get("content-length"), limit=MAX_BULK_BODY)
        reply = await raw_bulk()(await encoder.encode(raw), metadata=meta)
        return json_response({
            "results": [{"index": r.index, "status": r.status, "id": r.id or None,
                         "errors": list(r.errors)} for r in reply.results],
            "successCount": reply.success_count, "errorCount": reply.error_count})

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
    ]
