"""AccountService: the caller's account and the API version, for integrations checking a key."""

from __future__ import annotations

from email.utils import parseaddr
from importlib import metadata
from typing import Any, TypeAlias

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from eventflow.v1 import account_pb2, account_pb2_grpc
from server.accounts import AccountProfile, account_profile, set_time_zone
from server.api.errors import current_account
from server.config import Settings

__all__ = ["PROTOCOL_VERSION", "AccountService", "release"]

Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]
# The eSputnik API protocol the routes follow (eSputnik's /version answers "1.0").
PROTOCOL_VERSION = "1.0"


def release() -> str:
    """eventflow's installed version; the source tree's when it is not installed."""
    try:
        return metadata.version("eventflow")
    except metadata.PackageNotFoundError:
        return "0.0.0+source"


class AccountService(account_pb2_grpc.AccountServiceServicer):
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        # Accounts without an address of their own show the sender address of the mail.
        self._fallback_email = parseaddr(settings.mail_from)[1]

    async def GetAccountInfo(self, request: account_pb2.GetAccountInfoRequest, context: Ctx
                             ) -> account_pb2.AccountInfo:
        return self._info(await account_profile(self._engine, account_id=current_account.get()))

    def _info(self, profile: AccountProfile) -> account_pb2.AccountInfo:
        return account_pb2.AccountInfo(org_id=profile.account_id,
                                       organisation_name=profile.name,
                                       user_email=profile.email or self._fallback_email,
                                       time_zone=profile.time_zone or "UTC")

    async def UpdateAccount(self, request: account_pb2.UpdateAccountRequest, context: Ctx
                            ) -> account_pb2.AccountInfo:
        account_id = current_account.get()
        if request.HasField("time_zone"):
            return self._info(await set_time_zone(self._engine, account_id=account_id,
                                                  time_zone=request.time_zone))
        return self._info(await account_profile(self._engine, account_id=account_id))

    async def GetVersion(self, request: account_pb2.GetVersionRequest, context: Ctx
                         ) -> account_pb2.VersionInfo:
        return account_pb2.VersionInfo(version=release(), protocol_version=PROTOCOL_VERSION)
