"""Screen 7, Sent messages: every letter and webhook call with its status and reason,
filtered by run, contact or workflow; one of them with what it sent."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from starlette.responses import Response

from eventflow.v1 import console_pb2, console_pb2_grpc, workflows_pb2, workflows_pb2_grpc
from server.console.web import Page, pretty_json
from server.gateway.http import path_id, query_number

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where letters go, as a person checking a delivery needs it: the SMTP server (no
    credentials) and, under ``make run``, the development sink's folder of letters."""

    smtp: str
    sink: str


def delivery(ctx: Page) -> Delivery:
    settings = ctx.console.state.settings
    url = urlsplit(settings.smtp_url or "")
    smtp = f"{url.scheme}://{url.hostname}:{url.port}" if url.hostname and url.port else ""
    # The sink writes here (server/mail); a deployment with a real SMTP server has no folder.
    folder = (settings.data_dir / "mail").resolve()
    local = url.hostname in ("127.0.0.1", "localhost", "::1")
    return Delivery(smtp=smtp, sink=f"{folder}/" if local and folder.is_dir() else "")


async def sent(ctx: Page) -> Response:
    filters = {name: query_number(ctx.request, name) for name in ("run", "contact", "workflow")}
    before = query_number(ctx.request, "before")
    reply = await ctx.stub(workflows_pb2_grpc.WorkflowServiceStub).ListMessages(
        workflows_pb2.ListMessagesRequest(
            run_id=filters["run"], contact_id=filters["contact"],
            workflow_id=filters["workflow"], page_size=PAGE_SIZE, before_id=before),
        metadata=ctx.meta)
    active = {k: str(v) for k, v in filters.items() if v}
    next_url = ""
    if len(reply.messages) == PAGE_SIZE:
        next_url = "/sent?" + urlencode({**active, "before": reply.messages[-1].id})
    open_now = any(m.status == "queued" for m in reply.messages)
    return ctx.render("sent.html", messages=reply.messages, filters=filters,
                      filtered=bool(active), next_url=next_url, first_page=not before,
                      open_now=open_now, delivery=delivery(ctx))


async def sent_one(ctx: Page) -> Response:
    """A letter as it went out (subject, HTML in a sandboxed frame, text), or a webhook's body."""
    reply = await ctx.stub(console_pb2_grpc.ConsoleServiceStub).GetSentMessage(
        console_pb2.GetSentMessageRequest(id=path_id(ctx.request, "message_id")),
        metadata=ctx.meta)
    m = reply.message
    body = pretty_json(reply.text) if m.channel == "webhook" else reply.text
    return ctx.render("sent_message.html", m=m, html=reply.html, text=body, kept=reply.kept,
                      open_now=m.status == "queued", delivery=delivery(ctx))
