"""Screen 6, Contacts: search by email, phone or external id; a contact's fields, channels,
subscription status, events timeline, runs and messages; a bulk import with progress."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from starlette.responses import JSONResponse, Response

from eventflow.v1 import (
    console_pb2,
    console_pb2_grpc,
    contacts_pb2,
    contacts_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
)
from server.console.web import Page, read_json
from server.gateway.bulkcodec import bulk_request
from server.gateway.http import path_id

LIST_LIMIT = 100
TIMELINE = 50
# One import request carries at most this many contacts (the RPC takes 3,000).
IMPORT_CHUNK = 500


def _stub(ctx: Page) -> contacts_pb2_grpc.ContactServiceStub:
    return ctx.stub(contacts_pb2_grpc.ContactServiceStub)


def _body(c: contacts_pb2.Contact) -> dict[str, Any]:
    body: dict[str, Any] = json_format.MessageToDict(c.body)
    body["id"] = c.id
    return body


def channel(body: dict[str, Any], kind: str) -> str:
    return next((str(ch.get("value")) for ch in body.get("channels") or []
                 if ch.get("type") == kind), "")


async def contact_list(ctx: Page) -> Response:
    q = ctx.request.query_params
    search = {name: q.get(name, "").strip() for name in ("email", "phone", "external")}
    reply = await _stub(ctx).SearchContacts(contacts_pb2.SearchContactsRequest(
        email=search["email"], phone=search["phone"],
        external_customer_id=search["external"], limit=LIST_LIMIT), metadata=ctx.meta)
    rows = [_body(c) for c in reply.contacts]
    return ctx.render("contacts.html", rows=rows, search=search, channel=channel,
                      searched=any(search.values()), limit=LIST_LIMIT, chunk=IMPORT_CHUNK)


async def contact_page(ctx: Page) -> Response:
    contact_id = path_id(ctx.request, "contact_id")
    c = await _stub(ctx).GetContact(contacts_pb2.GetContactRequest(id=contact_id),
                                    metadata=ctx.meta)
    fields = await _stub(ctx).ListFields(contacts_pb2.ListFieldsRequest(), metadata=ctx.meta)
    events = await ctx.stub(console_pb2_grpc.ConsoleServiceStub).ListContactEvents(
        console_pb2.ListContactEventsRequest(contact_id=contact_id, page_size=TIMELINE),
        metadata=ctx.meta)
    wf = ctx.stub(workflows_pb2_grpc.WorkflowServiceStub)
    runs = await wf.ListRuns(workflows_pb2.ListRunsRequest(contact_id=contact_id,
                                                           page_size=TIMELINE), metadata=ctx.meta)
    messages = await wf.ListMessages(workflows_pb2.ListMessagesRequest(
        contact_id=contact_id, page_size=TIMELINE), metadata=ctx.meta)
    body = _body(c)
    names = {f.id: f.name for f in fields.fields}
    return ctx.render("contact.html", c=body, names=names, events=events.events,
                      more_events=bool(events.next_page_token), runs=runs.runs,
                      messages=messages.messages,
                      body_json=json.dumps(body, indent=2, ensure_ascii=False))


async def import_chunk(ctx: Page) -> Response:
    """``POST /contacts/import`` (JSON, CSRF header): one chunk of the page's bulk import, in
    the body of ``POST /api/v1/contacts`` (``restoreDeleted``, ``dedupeOn``, ``groupNames``...)
    read by the gateway's own rules, so the two imports never differ."""
    doc = read_json(await ctx.request.body(), "import chunk")
    contacts = doc.get("contacts") if isinstance(doc, dict) else None
    if isinstance(contacts, list) and len(contacts) > IMPORT_CHUNK:
        return JSONResponse({"error": f"send at most {IMPORT_CHUNK} contacts per chunk",
                             "violations": [{"field": "contacts", "message":
                                             f"at most {IMPORT_CHUNK} per chunk"}]}, 400)
    reply = await _stub(ctx).BulkUpsertContacts(bulk_request(doc), metadata=ctx.meta)
    return JSONResponse({
        "successCount": reply.success_count, "errorCount": reply.error_count,
        "errors": [{"index": r.index, "status": r.status, "id": r.id, "errors": list(r.errors)}
                   for r in reply.results if r.errors]})
