"""Registers the services beyond EventService (templates, contacts, workflows) on a server.

Each feature adds itself here, so the server assembly in ``app.py`` stays unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import grpc
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from server.api.events import IngestDeps


class Closer(Protocol):
    async def close(self) -> None: ...


# What start_server calls to add services: (resources to close on shutdown, service names).
Register = Callable[[grpc.aio.Server, IngestDeps], Awaitable[tuple[list[Closer], list[str]]]]


async def register_all(server: grpc.aio.Server, deps: IngestDeps
                       ) -> tuple[list[Closer], list[str]]:
    """Returns (resources to close on shutdown, full service names for reflection/health)."""
    from server.templating.pool import RenderPool

    # One pool of render processes for previews and simulations of this serving process.
    renderer = RenderPool(processes=deps.settings.render_processes)
    closers: list[Closer] = [renderer]
    names: list[str] = []

    from eventflow.v1 import templates_pb2, templates_pb2_grpc
    from server.api.templates import TemplateService

    templates_pb2_grpc.add_TemplateServiceServicer_to_server(TemplateService(deps.engine, renderer), server)
    names.append(templates_pb2.DESCRIPTOR.services_by_name["TemplateService"].full_name)

    from eventflow.v1 import contacts_pb2, contacts_pb2_grpc
    from server.api.contacts import ContactService
    from server.contacts.batchcheck import BulkChecker

    checker = BulkChecker()
    closers.append(checker)
    contacts_pb2_grpc.add_ContactServiceServicer_to_server(ContactService(deps, checker),
                                                           server)
    names.append(contacts_pb2.DESCRIPTOR.services_by_name["ContactService"].full_name)

    from eventflow.v1 import workflows_pb2, workflows_pb2_grpc
    from server.api.workflows import WorkflowService

    workflows_pb2_grpc.add_WorkflowServiceServicer_to_server(
        WorkflowService(deps.engine, deps.settings, renderer, deps.event_types), server)
    names.append(workflows_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name)

    from eventflow.v1 import account_pb2, account_pb2_grpc
    from server.api.account import AccountService

    account_pb2_grpc.add_AccountServiceServicer_to_server(
        AccountService(deps.engine, deps.settings), server)
    names.append(account_pb2.DESCRIPTOR.services_by_name["AccountService"].full_name)

    from eventflow.v1 import consent_pb2, consent_pb2_grpc
    from server.api.consent import ConsentService

    consent_pb2_grpc.add_ConsentServiceServicer_to_server(ConsentService(deps), server)
    names.append(consent_pb2.DESCRIPTOR.services_by_name["ConsentService"].full_name)

    from eventflow.v1 import orders_pb2
    from server.api.orders import OrderService, add_to_server

    add_to_server(OrderService(deps), server)
    names.append(orders_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name)

    from eventflow.v1 import messaging_pb2
    from server.api.messaging import MessagingService
    from server.api.messaging import add_to_server as add_messaging

    # Its own lazy pool: sends are enqueued after their commit, and a Redis that is down
    # leaves them to the workers' sweeper.
    assert deps.settings.redis_url, "the server runs with REDIS_URL resolved"
    redis = ArqRedis(connection_pool=ConnectionPool.from_url(
        deps.settings.redis_url, socket_connect_timeout=2, socket_timeout=5),
        default_queue_name=deps.settings.queue_name)
    closers.append(redis)
    add_messaging(MessagingService(deps, redis), server)
    names.append(messaging_pb2.DESCRIPTOR.services_by_name["MessagingService"].full_name)

    from eventflow.v1 import event_types_pb2, event_types_pb2_grpc
    from server.api.event_types import EventTypeService

    event_types_pb2_grpc.add_EventTypeServiceServicer_to_server(EventTypeService(deps), server)
    names.append(event_types_pb2.DESCRIPTOR.services_by_name["EventTypeService"].full_name)
    from eventflow.v1 import segments_pb2, segments_pb2_grpc
    from server.api.segments import SegmentService

    segments_pb2_grpc.add_SegmentServiceServicer_to_server(SegmentService(deps.engine), server)
    names.append(segments_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name)

    from eventflow.v1 import console_pb2, console_pb2_grpc
    from server.api.console import ConsoleService

    console_pb2_grpc.add_ConsoleServiceServicer_to_server(ConsoleService(deps.engine), server)
    names.append(console_pb2.DESCRIPTOR.services_by_name["ConsoleService"].full_name)
    return closers, names
