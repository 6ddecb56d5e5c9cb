"""Consent routes as eSputnik's: the subscription form (``POST /api/v1/contact/subscribe``),
the unsubscribed-address list (``POST /api/v1/emails/unsubscribed/add`` and ``/delete``,
also under the older ``emails/unsubscribe/``, and our ``GET /api/v1/emails/unsubscribed``),
and deleting or erasing a contact by external id (``DELETE /api/v1/contact``)."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from eventflow.v1 import consent_pb2, consent_pb2_grpc
from server.contacts.group_names import parse_group_names
from server.errors import InvalidArgument, Violation
from server.gateway.http import auth_metadata, endpoint, json_response, read_json
from server.gateway.params import only_members, only_query, page_of, query_bool
from server.gateway.state import GatewayState

MAX_FORM_BODY = 1024 * 1024
MAX_EMAILS_BODY = 4 * 1024 * 1024
SUBSCRIBE_MEMBERS = ("contact", "groups", "formType", "subscriptions", "dedupeOn", "fields")


def deleted_text(contact_id: int) -> PlainTextResponse:
    """eSputnik's answer to a deleted contact, which clients compare verbatim."""
    return PlainTextResponse(f"Contact with id='{contact_id}' has been deleted")


def _optional_text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument.from_violations([Violation(name, "must be a string")])
    return value


def subscribe_request(raw: Any) -> consent_pb2.SubscribeRequest:
    """The form body as eSputnik documents it, plus the older ``fields`` / ``dedupeOn``."""
    doc = only_members(raw, SUBSCRIBE_MEMBERS)
    contact = doc.get("contact")
    if not isinstance(contact, dict):
        raise InvalidArgument.from_violations([Violation(
            "contact", 'is required: send {"contact": {"channels": [{"type": "email", '
            '"value": "..."}]}}')])
    if doc.get("subscriptions"):
        raise InvalidArgument.from_violations([Violation(
            "subscriptions", "subscription categories are not supported; send null or []")])
    extra_fields = doc.get("fields")
    if extra_fields:
        if contact.get("fields"):
            raise InvalidArgument.from_violations([Violation(
                "fields", "give additional fields in contact.fields or here, not both")])
        contact = {**contact, "fields": extra_fields}
    request = consent_pb2.SubscribeRequest(
        groups=parse_group_names(doc.get("groups"), name="groups"),
        form_type=_optional_text(doc, "formType"), dedupe_on=_optional_text(doc, "dedupeOn"))
    request.contact.CopyFrom(_struct(contact))
    return request


def _struct(doc: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(doc)
    return out


def _emails(raw: Any) -> consent_pb2.UnsubscribedEmailsRequest:
    doc = only_members(raw, ("emails",))
    emails = doc.get("emails")
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        raise InvalidArgument.from_violations([Violation(
            "emails", 'is required: a list of addresses, {"emails": ["user@example.com"]}')])
    return consent_pb2.UnsubscribedEmailsRequest(emails=emails)


def routes(state: GatewayState) -> list[Route]:
    def stub() -> consent_pb2_grpc.ConsentServiceStub:
        return state.stub(consent_pb2_grpc.ConsentServiceStub)

    @endpoint
    async def subscribe(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        body = subscribe_request(await read_json(request, limit=MAX_FORM_BODY))
        reply = await stub().Subscribe(body, metadata=meta)
        return json_response({"id": reply.id})

    @endpoint
    async def unsubscribe(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        body = _emails(await read_json(request, limit=MAX_EMAILS_BODY))
        await stub().AddUnsubscribedEmails(body, metadata=meta)
        return Response(status_code=200)

    @endpoint
    async def resubscribe(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        body = _emails(await read_json(request, limit=MAX_EMAILS_BODY))
        await stub().RemoveUnsubscribedEmails(body, metadata=meta)
        return Response(status_code=200)

    @endpoint
    async def list_unsubscribed(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ("startindex", "maxrows"))
        offset, limit = page_of(request)
        reply = await stub().ListUnsubscribedEmails(
            consent_pb2.ListUnsubscribedEmailsRequest(offset=offset, limit=limit), metadata=meta)
        return json_response(list(reply.emails), headers={"TotalCount": str(reply.total_count)})

    @endpoint
    async def delete_by_external_id(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ("externalCustomerId", "erase"))
        external = request.query_params.get("externalCustomerId", "")
        if not external.strip():
            raise InvalidArgument.from_violations([Violation(
                "externalCustomerId", "is required: DELETE /api/v1/contact?externalCustomerId="
                "...&erase=true (or DELETE /api/v1/contact/{id})")])
        reply = await stub().DeleteContact(consent_pb2.DeleteContactByRequest(
            external_customer_id=external, erase=query_bool(request, "erase")), metadata=meta)
        return deleted_text(reply.id)

    return [
        Route("/api/v1/contact/subscribe", subscribe, methods=["POST"]),
        Route("/api/v1/emails/unsubscribed/add", unsubscribe, methods=["POST"]),
        Route("/api/v1/emails/unsubscribed/delete", resubscribe, methods=["POST"]),
        Route("/api/v1/emails/unsubscribe/add", unsubscribe, methods=["POST"]),
        Route("/api/v1/emails/unsubscribe/delete", resubscribe, methods=["POST"]),
        Route("/api/v1/emails/unsubscribed", list_unsubscribed, methods=["GET"]),
        Route("/api/v1/contact", delete_by_external_id, methods=["DELETE"]),
    ]
