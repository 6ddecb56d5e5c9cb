"""ConsentService: subscription forms, the unsubscribed-address list and contact erasure,
thin methods over ``server.consent``."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from eventflow.v1 import consent_pb2, consent_pb2_grpc
from server.api.emit import Emitter
from server.api.errors import current_account
from server.api.events import IngestDeps
from server.codec.values import value_to_py
from server.consent.erasure import delete_contact_by
from server.consent.subscribe import subscribe, subscription_event
from server.consent.unsubscribed import (
    add_unsubscribed,
    list_unsubscribed,
    parse_emails,
    remove_unsubscribed,
)
from server.contacts.group_names import parse_group_names
from server.db.models import utcnow
from server.errors import InvalidArgument, Violation
from server.ingest.validation import FORBIDDEN, FORBIDDEN_SHOWN, MAX_TYPE_KEY
from server.workflows.segment_runs import contacts_changed_runs

__all__ = ["ConsentService"]

Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]
PAGE: int = 500


def _form_type(text: str) -> str:
    if len(text) > MAX_TYPE_KEY or FORBIDDEN.intersection(text):
        raise InvalidArgument.from_violations([Violation(
            "formType", f"must be at most {MAX_TYPE_KEY} characters without any of "
            f"{FORBIDDEN_SHOWN}")])
    return text


class ConsentService(consent_pb2_grpc.ConsentServiceServicer):
    def __init__(self, deps: IngestDeps) -> None:
        self._d = deps
        self._emitter = Emitter(deps)

    async def Subscribe(self, request: consent_pb2.SubscribeRequest, context: Ctx
                        ) -> consent_pb2.SubscribeResponse:
        account_id = current_account.get()
        groups = parse_group_names(list(request.groups), name="groups")
        form_type = _form_type(request.form_type)
        form = {key: value_to_py(value) for key, value in request.contact.fields.items()}
        async with self._d.engine.begin() as conn:
            done = await subscribe(conn, account_id=account_id, form=form, groups=groups,
                                   dedupe_on=request.dedupe_on.strip())
            await contacts_changed_runs(conn, account_id=account_id,
                                        contact_ids=[done.contact_id], now=utcnow(),
                                        reason="contact changed (subscription form)")
        (event_id,) = await self._emitter.emit(
            [subscription_event(done, form_type=form_type, groups=groups)],
            account_id=account_id)
        return consent_pb2.SubscribeResponse(id=done.contact_id, created=done.created,
                                             event_id=event_id)

    async def AddUnsubscribedEmails(self, request: consent_pb2.UnsubscribedEmailsRequest,
                                    context: Ctx) -> consent_pb2.UnsubscribedEmailsResponse:
        emails = parse_emails(list(request.emails))
        async with self._d.engine.begin() as conn:
            changed = await add_unsubscribed(conn, account_id=current_account.get(),
                                             emails=emails)
        return consent_pb2.UnsubscribedEmailsResponse(changed=changed)

    async def RemoveUnsubscribedEmails(self, request: consent_pb2.UnsubscribedEmailsRequest,
                                       context: Ctx) -> consent_pb2.UnsubscribedEmailsResponse:
        emails = parse_emails(list(request.emails))
        async with self._d.engine.begin() as conn:
            changed = await remove_unsubscribed(conn, account_id=current_account.get(),
                                                emails=emails)
        return consent_pb2.UnsubscribedEmailsResponse(changed=changed)

    async def ListUnsubscribedEmails(self, request: consent_pb2.ListUnsubscribedEmailsRequest,
                                     context: Ctx
                                     ) -> consent_pb2.ListUnsubscribedEmailsResponse:
        if request.offset < 0 or request.limit < 0:
            raise InvalidArgument.from_violations([Violation("offset", "must not be negative")])
        async with self._d.engine.connect() as conn:
            emails, total = await list_unsubscribed(
                conn, account_id=current_account.get(), offset=request.offset,
                limit=min(request.limit or PAGE, PAGE))
        return consent_pb2.ListUnsubscribedEmailsResponse(emails=emails, total_count=total)

    async def DeleteContact(self, request: consent_pb2.DeleteContactByRequest, context: Ctx
                            ) -> consent_pb2.DeleteContactByResponse:
        which = request.WhichOneof("contact")
        external = request.external_customer_id.strip()
        if which is None or (which == "id" and request.id <= 0) or \
                (which == "external_customer_id" and not external):
            raise InvalidArgument.from_violations([Violation(
                "externalCustomerId", "is required: name the contact by externalCustomerId "
                "(or by its id)")])
        async with self._d.engine.begin() as conn:
            contact_id = await delete_contact_by(
                conn, account_id=current_account.get(),
                contact_id=request.id if which == "id" else None,
                external_customer_id=external or None, erase=request.erase)
            await contacts_changed_runs(conn, account_id=current_account.get(),
                                        contact_ids=[contact_id], now=utcnow(),
                                        reason="contact deleted")
        return consent_pb2.DeleteContactByResponse(id=contact_id)
