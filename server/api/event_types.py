"""EventTypeService: an event type's settings and recorded params, thin methods over
``server.eventtypes``. A change of "Validate parameters" or of segmentation is answered
once every serving process has dropped the account's cached rules
(``eventtypes.rules.announce_change``)."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from eventflow.v1 import event_types_pb2, event_types_pb2_grpc, events_pb2
from server.api.errors import current_account
from server.api.events import IngestDeps, fill_settings
from server.codec.values import dt_to_ts
from server.db.models import utcnow
from server.errors import InvalidArgument, Violation
from server.eventtypes import store
from server.eventtypes.rules import announce_change
from server.eventtypes.settings import ParamRule, SettingsPatch

__all__ = ["EventTypeService"]

Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def _type(view: store.TypeView) -> events_pb2.EventType:
    out = events_pb2.EventType(id=view.id, key=view.key, event_count=view.event_count)
    dt_to_ts(view.created_at, out.created_at)
    fill_settings(out, view.settings)
    for p in view.params:
        param = out.params.add(name=p.name, count=p.count)
        for kind, n in p.types:
            param.types.add(type=kind, count=n)
        dt_to_ts(p.first_seen, param.first_seen)
        dt_to_ts(p.last_seen, param.last_seen)
    return out


def _key(key: str) -> str:
    if not key:
        raise InvalidArgument.from_violations([Violation("eventTypeKey", "is required")])
    return key


class EventTypeService(event_types_pb2_grpc.EventTypeServiceServicer):
    def __init__(self, deps: IngestDeps) -> None:
        self._d = deps

    async def GetEventType(self, request: event_types_pb2.GetEventTypeRequest, context: Ctx
                           ) -> events_pb2.EventType:
        return _type(await store.get_type(self._d.engine, account_id=current_account.get(),
                                          key=_key(request.key)))

    async def UpdateEventType(self, request: event_types_pb2.UpdateEventTypeRequest,
                              context: Ctx) -> events_pb2.EventType:
        account_id = current_account.get()
        patch = SettingsPatch(
            segmentation=request.segmentation if request.HasField("segmentation") else None,
            create_contacts=(request.create_contacts if request.HasField("create_contacts")
                             else None),
            validate_params=(tuple(ParamRule(p.name, p.required)
                                   for p in request.validate_params.params)
                             if request.HasField("validate_params") else None))
        view = await store.update_type(self._d.engine, account_id=account_id,
                                       key=_key(request.key), patch=patch, now=utcnow())
        # Both settings are read by acceptance (required params; segmentation for past
        # events), so every serving process drops its cache of them before this answers.
        if patch.validate_params is not None or patch.segmentation is not None:
            self._d.event_types.forget(str(account_id))
            settings = self._d.settings
            assert settings.redis_url, "the server runs with REDIS_URL resolved"
            await announce_change(redis_url=settings.redis_url, prefix=settings.redis_prefix,
                                  account_id=account_id)
        return _type(view)
