"""Feature hooks of the worker: the batch processors and extra arq jobs.

``ctx["batch_processors"]`` is the ordered list of ``server.processing.batch.BatchProcessor``
each event batch runs inside its transaction (docs/workers.md, "Processors"): contacts
first (later processors read ``Batch.contacts``), then orders, the one-event processors a
caller passed to ``build_worker``, then workflows. Features add theirs here.
"""

from __future__ import annotations

from typing import Any

from server.processing.batch import each_event


async def install(ctx: dict[str, Any]) -> None:
    """Add feature processors (in order) and resources to the worker context."""
    from server.orders.processor import record_order_event
    from server.processing.contacts import link_batch_contacts

    extra = [each_event(p) for p in ctx.get("processors", [])]
    # First: later processors (orders, workflows) read the events' contacts. Orders next:
    # an order belongs to its event's contact.
    ctx["batch_processors"] = [link_batch_contacts, each_event(record_order_event), *extra]
    from workers import messaging, workflows

    await workflows.install(ctx)
    await messaging.install(ctx)
    from workers import segments

    await segments.install(ctx)


async def uninstall(ctx: dict[str, Any]) -> None:
    """Release what ``install`` opened."""
    from workers import messaging, segments, workflows

    await segments.uninstall(ctx)
    await messaging.uninstall(ctx)
    await workflows.uninstall(ctx)


def job_functions() -> list[Any]:
    from workers import messaging, workflows

    functions: list[Any] = []
    functions += workflows.job_functions()
    functions += messaging.job_functions()
    return functions
