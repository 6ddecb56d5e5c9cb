"""Feature hooks of the worker: processors run by process_event and extra arq jobs.

Contacts and workflows register here, keeping ``settings.py`` unchanged as they grow.
"""

from __future__ import annotations

from typing import Any


async def install(ctx: dict[str, Any]) -> None:
    """Add feature processors (in order) and resources to the worker context."""
    from server.contacts.events import link_event_contact

    # First: later processors (workflows) read the event's contact.
    ctx.setdefault("processors", []).insert(0, link_event_contact)
    from server.orders.processor import record_order_event

    # After the contact linking: an order belongs to its event's contact.
    ctx["processors"].insert(1, record_order_event)
    from workers import messaging, workflows

    await workflows.install(ctx)
    await messaging.install(ctx)


async def uninstall(ctx: dict[str, Any]) -> None:
    """Release what ``install`` opened."""
    from workers import messaging, workflows

    await messaging.uninstall(ctx)
    await workflows.uninstall(ctx)


def job_functions() -> list[Any]:
    from workers import messaging, workflows

    functions: list[Any] = []
    functions += workflows.job_functions()
    functions += messaging.job_functions()
    return functions
