"""Routes of features beyond events (messages, contacts, workflows) register here."""

from __future__ import annotations

from typing import Any

from server.gateway.state import GatewayState


def extra_routes(state: GatewayState) -> list[Any]:
    from server.gateway import templates

    routes: list[Any] = []
    routes += templates.routes(state)
    from server.gateway import workflows

    routes += workflows.routes(state)
    from server.gateway import contacts

    routes += contacts.routes(state)
    from server.gateway import account

    routes += account.routes(state)
    from server.gateway import consent

    routes += consent.routes(state)
    from server.gateway import orders

    routes += orders.routes(state)
    from server.gateway import messaging

    routes += messaging.routes(state)
    from server.gateway import event_types

    routes += event_types.routes(state)
    from server.gateway import segments

    routes += segments.routes(state)
    from server.gateway import admin

    routes += admin.routes(state)
    return routes
