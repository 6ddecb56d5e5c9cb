"""The operator console: server-rendered pages served by the gateway at ``/``.

It reaches the server only through the gRPC services, as the signed-in account; its
templates, styles and scripts ship in this package (no CDN, works offline).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from server.console import (
    auth,
    contacts,
    event_types,
    events,
    messages,
    overview,
    segments,
    sent,
    workflows,
)
from server.console.web import HERE, Console, page
from server.gateway.state import GatewayState


def routes(state: GatewayState) -> list[Any]:
    console = Console(state)

    async def login(request: Request) -> Response:
        return await auth.login(console, request)

    # The package's own assets by name (a plain route: every gateway route is a Route).
    assets = {p.name: p for p in (HERE / "static").iterdir() if p.is_file()}

    async def static(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return Response("no such file", status_code=404, media_type="text/plain")
        return FileResponse(found, headers={"Cache-Control": "public, max-age=300",
                                            "X-Content-Type-Options": "nosniff"})

    return [
        Route("/", page(console, "overview", overview.overview), methods=["GET"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", page(console, "", auth.logout, changes=True), methods=["POST"]),
        Route("/event-types", page(console, "event-types", event_types.event_types)),
        Route("/event-types/{key:path}", page(console, "event-types", event_types.event_type),
              methods=["GET"]),
        Route("/event-types/{key:path}",
              page(console, "event-types", event_types.save_event_type, changes=True),
              methods=["POST"]),
        Route("/events", page(console, "events", events.history)),
        Route("/events/{event_id}", page(console, "events", events.event)),
        Route("/messages", page(console, "messages", messages.message_list), methods=["GET"]),
        Route("/messages", page(console, "messages", messages.save_message, changes=True),
              methods=["POST"]),
        Route("/messages/new", page(console, "messages", messages.new_message)),
        Route("/messages/preview", page(console, "messages", messages.preview, changes=True),
              methods=["POST"]),
        Route("/messages/{template_id}", page(console, "messages", messages.show_message),
              methods=["GET"]),
        Route("/messages/{template_id}",
              page(console, "messages", messages.save_message, changes=True), methods=["POST"]),
        Route("/workflows", page(console, "workflows", workflows.workflow_list), methods=["GET"]),
        Route("/workflows", page(console, "workflows", workflows.create_workflow, changes=True),
              methods=["POST"]),
        Route("/workflows/new", page(console, "workflows", workflows.new_workflow)),
        Route("/workflows/{workflow_id}", page(console, "workflows", workflows.show_workflow)),
        Route("/workflows/{workflow_id}/active",
              page(console, "workflows", workflows.set_active, changes=True), methods=["POST"]),
        Route("/workflows/{workflow_id}/definition",
              page(console, "workflows", workflows.update_workflow, changes=True),
              methods=["POST"]),
        Route("/workflows/{workflow_id}/simulate",
              page(console, "workflows", workflows.simulate, changes=True),
              methods=["GET", "POST"]),
        Route("/runs/{run_id}", page(console, "workflows", workflows.run_page)),
        Route("/contacts", page(console, "contacts", contacts.contact_list)),
        Route("/contacts/import", page(console, "contacts", contacts.import_chunk, changes=True),
              methods=["POST"]),
        Route("/contacts/{contact_id}", page(console, "contacts", contacts.contact_page)),
        Route("/segments", page(console, "segments", segments.segment_list), methods=["GET"]),
        Route("/segments", page(console, "segments", segments.create_segment, changes=True),
              methods=["POST"]),
        Route("/segments/new", page(console, "segments", segments.new_segment_page)),
        Route("/segments/{segment_id}", page(console, "segments", segments.show_segment),
              methods=["GET"]),
        Route("/segments/{segment_id}",
              page(console, "segments", segments.update_segment, changes=True),
              methods=["POST"]),
        Route("/segments/{segment_id}/delete",
              page(console, "segments", segments.delete_segment, changes=True),
              methods=["POST"]),
        Route("/sent", page(console, "sent", sent.sent)),
        Route("/sent/{message_id}", page(console, "sent", sent.sent_one)),
        Route("/console/static/{name}", static, methods=["GET"]),
    ]
