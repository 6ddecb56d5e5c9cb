"""MessagingService: smartsend and message/email, thin methods over ``server.messaging``."""

from __future__ import annotations

import logging
import uuid
from email.utils import parseaddr
from typing import Any, TypeAlias

import grpc
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncConnection

from eventflow.v1 import messaging_pb2, messaging_pb2_grpc
from server.api.errors import current_account
from server.api.events import IngestDeps
from server.api.ordered import add_service
from server.codec.received import Received
from server.codec.values import struct_from_bytes
from server.contacts.identity import Identifiers
from server.contacts.store import find_contact_id, get_contact
from server.messaging.jobs import enqueue_sends
from server.messaging.requests import (
    Recipient,
    parse_email,
    parse_smartsend,
    sender_with_name,
)
from server.messaging.store import NewMessage, insert_messages, messages_by_request
from server.messaging.suppression import address_standing, refusal
from server.templating.store import get_template

__all__ = ["MessagingService", "add_to_server"]

log = logging.getLogger(__name__)
Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def add_to_server(service: MessagingService, server: grpc.aio.Server) -> None:
    """The send bodies are read from the bytes received, keeping a template's data in the
    caller's key order (``api.ordered``)."""
    add_service(service, server, messaging_pb2.DESCRIPTOR.services_by_name["MessagingService"],
                received=("SmartSend", "SendEmail"))


async def _resolve(conn: AsyncConnection, account_id: int, recipient: Recipient
                   ) -> tuple[str, int | None, str | None]:
    """(address, contact id, why it cannot be sent): by contactId, else by locator."""
    if recipient.contact_id is not None:
        contact = await get_contact(conn, account_id=account_id,
                                    contact_id=recipient.contact_id)
        if contact is None:
            return recipient.address or "", None, \
                f"no contact with id {recipient.contact_id} in this account"
        address = recipient.address or contact.email
        if address is None:
            return "", contact.id, f"contact {contact.id} has no email address"
        return address, contact.id, None
    assert recipient.address is not None
    found = await find_contact_id(conn, account_id=account_id,
                                  identifiers=Identifiers(email=recipient.address))
    return recipient.address, found, None


class MessagingService(messaging_pb2_grpc.MessagingServiceServicer):
    def __init__(self, deps: IngestDeps, redis: ArqRedis) -> None:
        self._d = deps
        self._redis = redis
        sender = deps.settings.mail_from
        self._domain = parseaddr(sender)[1].rpartition("@")[2] or "eventflow.local"

    async def _store(self, account_id: int, messages: list[NewMessage]
                     ) -> messaging_pb2.SendResponse:
        async with self._d.engine.begin() as conn:
            ids = await insert_messages(conn, account_id=account_id, messages=messages,
                                        domain=self._domain)
        queued = [i for i, m in zip(ids, messages, strict=True) if m.refused is None]
        settings = self._d.settings
        try:
            await enqueue_sends(self._redis, prefix=settings.redis_prefix,
                                queue=settings.queue_name, message_ids=queued)
        except Exception as exc:  # noqa: BLE001 - stored; the workers' sweeper sends them
            log.warning("enqueue of %d messages failed (%s); the sweeper will", len(queued), exc)
        return messaging_pb2.SendResponse(results=[
            messaging_pb2.SendResult(locator=m.recipient, request_id=m.request_id,
                                     status="ERROR" if m.refused else "OK",
                                     message=m.refused or "")
            for m in messages])

    async def SmartSend(self, received: Received[messaging_pb2.SmartSendRequest], context: Ctx
                        ) -> messaging_pb2.SendResponse:
        account_id = current_account.get()
        request = received.message
        send = parse_smartsend(struct_from_bytes(received.part(2)))
        sender = sender_with_name(self._d.settings.mail_from, send.from_name)
        messages: list[NewMessage] = []
        async with self._d.engine.connect() as conn:
            await get_template(conn, account_id=account_id, template_id=request.message_id)
            for recipient in send.recipients:
                address, contact_id, problem = await _resolve(conn, account_id, recipient)
                if problem is None:
                    standing = await address_standing(conn, account_id=account_id,
                                                      address=address)
                    problem = refusal(standing, transactional=send.transactional,
                                      allow_unconfirmed=send.allow_unconfirmed)
                messages.append(NewMessage(
                    request_id=str(uuid.uuid4()), kind="smartsend",
                    template_id=request.message_id, recipient=address, contact_id=contact_id,
                    content={"data": recipient.data or {}}, sender=sender,
                    transactional=send.transactional,
                    meta={**recipient.meta, "allowUnconfirmed": send.allow_unconfirmed},
                    refused=problem))
        return await self._store(account_id, messages)

    async def SendEmail(self, received: Received[messaging_pb2.SendEmailRequest], context: Ctx
                        ) -> messaging_pb2.SendResponse:
        account_id = current_account.get()
        email = parse_email(struct_from_bytes(received.part(1)))
        messages: list[NewMessage] = []
        async with self._d.engine.connect() as conn:
            for address in email.addresses:
                contact_id = await find_contact_id(conn, account_id=account_id,
                                                   identifiers=Identifiers(email=address))
                standing = await address_standing(conn, account_id=account_id, address=address)
                messages.append(NewMessage(
                    request_id=str(uuid.uuid4()), kind="email", template_id=None,
                    recipient=address, contact_id=contact_id,
                    content={"subject": email.subject, "html": email.html, "text": email.text},
                    sender=email.sender or self._d.settings.mail_from,
                    transactional=email.transactional, meta=email.meta,
                    refused=refusal(standing, transactional=email.transactional)))
        return await self._store(account_id, messages)

    async def GetMessageStatus(self, request: messaging_pb2.GetMessageStatusRequest,
                               context: Ctx) -> messaging_pb2.GetMessageStatusResponse:
        async with self._d.engine.connect() as conn:
            found = await messages_by_request(conn, account_id=current_account.get(),
                                              request_ids=list(request.request_ids)[:1000])
        return messaging_pb2.GetMessageStatusResponse(results=[
            messaging_pb2.MessageStatus(request_id=m.request_id, locator=m.recipient,
                                        status=m.status.upper(), reason=m.reason or "",
                                        message_id=m.message_id)
            for m in found])
