"""AdminService: accounts and API keys for operators, behind the admin key.

The interceptor checks the admin key for this service (``AuthErrorInterceptor``); here a
revocation is committed, dropped from this process's cache, and announced to the other
serving processes (``server.keyrevocation``) before it is answered.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from eventflow.v1 import admin_pb2, admin_pb2_grpc
from server.accounts import KeyResolver, add_key, create_account, list_keys, revoke_key
from server.codec.values import dt_to_ts
from server.config import Settings
from server.keyrevocation import announce_revocation

__all__ = ["ADMIN_SERVICE", "AdminService"]

Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name


class AdminService(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, engine: AsyncEngine, settings: Settings, resolver: KeyResolver) -> None:
        self._engine = engine
        self._settings = settings
        self._resolver = resolver

    async def CreateAccount(self, request: admin_pb2.CreateAccountRequest, context: Ctx
                            ) -> admin_pb2.CreateAccountResponse:
        account_id, key = await create_account(self._engine, name=request.name,
                                               email=request.email or None)
        return admin_pb2.CreateAccountResponse(account_id=account_id, api_key=key)

    async def ListKeys(self, request: admin_pb2.ListKeysRequest, context: Ctx
                       ) -> admin_pb2.ListKeysResponse:
        out = admin_pb2.ListKeysResponse()
        for info in await list_keys(self._engine, account_id=request.account_id):
            item = out.keys.add(id=info.key_id, account_id=info.account_id, label=info.label)
            dt_to_ts(info.created_at, item.created_at)
        return out

    async def CreateKey(self, request: admin_pb2.CreateKeyRequest, context: Ctx
                        ) -> admin_pb2.CreateKeyResponse:
        key_id, key = await add_key(self._engine, account_id=request.account_id,
                                    label=request.label)
        return admin_pb2.CreateKeyResponse(key_id=key_id, api_key=key)

    async def RevokeKey(self, request: admin_pb2.RevokeKeyRequest, context: Ctx
                        ) -> admin_pb2.RevokeKeyResponse:
        account_id, key_hash = await revoke_key(self._engine, key_id=request.key_id)
        self._resolver.forget(key_hash)
        assert self._settings.redis_url, "the server runs with REDIS_URL resolved"
        told = await announce_revocation(redis_url=self._settings.redis_url,
                                         prefix=self._settings.redis_prefix, key_hash=key_hash)
        confirmed, subscribed = told or (0, 0)
        return admin_pb2.RevokeKeyResponse(account_id=account_id, confirmed=confirmed,
                                           subscribed=subscribed)
