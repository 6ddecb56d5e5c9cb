"""Finding 5: a revoked key is refused at once by every serving process; accounts and keys
are managed by the command line and by admin routes behind the admin key."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import grpc
import httpx
import pytest

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.accounts import KeyResolver, add_key, revoke_key
from server.errors import Unauthenticated
from server.keyrevocation import RevocationFeed
from tests.reliability.procs import Procs
from tests.support import Stack, basic, free_port

# Fresh connections spread over the serving processes (SO_REUSEPORT hashes each one), so
# 24 of them reach both of two processes but for a chance of 2^-23.
CONNECTIONS = 24


async def _statuses_over_fresh_connections(procs: Procs, key: str) -> list[grpc.StatusCode]:
    """ListEventTypes with ``key`` once on each of ``CONNECTIONS`` new gRPC connections."""
    async def one() -> grpc.StatusCode:
        async with grpc.aio.insecure_channel(
                procs.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            try:
                await events_pb2_grpc.EventServiceStub(channel).ListEventTypes(
                    events_pb2.ListEventTypesRequest(), metadata=(("x-api-key", key),), timeout=10)
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

    return list(await asyncio.gather(*(one() for _ in range(CONNECTIONS))))


def _admin(procs: Procs) -> dict[str, str]:
    return {"Authorization": basic(procs.admin_key)}


async def _account_id(http: httpx.AsyncClient, procs: Procs) -> int:
    r = await http.post("/api/v1/admin/accounts", headers=_admin(procs),
                        json={"name": "revocation test"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_revoked_key_is_refused_at_once_by_every_process(procs: Procs,
                                                                http: httpx.AsyncClient) -> None:
    """A key every serving process has cached is refused by all of them the moment the
    admin route's revocation answers (it was accepted for 60 s before)."""
    account = await _account_id(http, procs)
    r = await http.post(f"/api/v1/admin/accounts/{account}/keys", headers=_admin(procs),
                        json={"label": "to revoke"})
    assert r.status_code == 201, r.text
    key_id, key = r.json()["id"], r.json()["apiKey"]
    assert set(await _statuses_over_fresh_connections(procs, key)) == {grpc.StatusCode.OK}
    r = await http.delete(f"/api/v1/admin/keys/{key_id}", headers=_admin(procs))
    assert r.status_code == 200, r.text
    assert r.json() == {"accountId": account, "confirmed": 2, "subscribed": 2}
    statuses = await _statuses_over_fresh_connections(procs, key)
    assert set(statuses) == {grpc.StatusCode.UNAUTHENTICATED}, statuses
    listed = await http.get(f"/api/v1/admin/accounts/{account}/keys", headers=_admin(procs))
    assert [k["label"] for k in listed.json()] == ["default"]


def _cli(procs: Procs, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "server.accounts", *args], env=procs.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_command_line_creates_lists_and_revokes(procs: Procs) -> None:
    """`python -m server.accounts create|keys|revoke` on the running deployment: the new
    account's key works, and is refused everywhere once `revoke` returns."""
    out = _cli(procs, "create", "cli shop", "--email", "owner@shop.example")
    account = int(re.search(r"account (\d+) created", out).group(1))  # type: ignore[union-attr]
    key = out.rsplit(": ", 1)[1].strip()
    assert set(await _statuses_over_fresh_connections(procs, key)) == {grpc.StatusCode.OK}
    listing = _cli(procs, "keys", str(account))
    (key_id,) = re.findall(r"^(\d+)\tdefault\t", listing, re.MULTILINE)
    out = _cli(procs, "revoke", key_id)
    assert f"key {key_id} of account {account} revoked; 2 of 2 serving processes confirmed" in out
    assert set(await _statuses_over_fresh_connections(procs, key)) == {
        grpc.StatusCode.UNAUTHENTICATED}


@pytest.mark.parametrize("who", ["none", "account key", "wrong key"])
async def test_admin_routes_need_the_admin_key(procs: Procs, http: httpx.AsyncClient,
                                               who: str) -> None:
    """Without the admin key (none, an account's key, a wrong one) admin routes answer 401
    and create nothing."""
    headers = {"none": {}, "account key": procs.auth(),
               "wrong key": {"x-api-key": procs.admin_key[:-1]
                             + ("y" if procs.admin_key.endswith("x") else "x")}}[who]
    r = await http.post("/api/v1/admin/accounts", headers=headers, json={"name": "intruder"})
    assert r.status_code == 401, r.text
    r = await http.get("/api/v1/admin/accounts/1/keys", headers=headers)
    assert r.status_code == 401, r.text


async def test_admin_key_is_not_an_account_key(procs: Procs, http: httpx.AsyncClient) -> None:
    """The admin key opens admin routes only: an account route refuses it with 401."""
    r = await http.get("/api/v1/event-types", headers=_admin(procs))
    assert r.status_code == 401, r.text


async def test_admin_input_is_checked(procs: Procs, http: httpx.AsyncClient) -> None:
    """A nameless account is 400 naming `name`; keys of an unknown account are 404."""
    r = await http.post("/api/v1/admin/accounts", headers=_admin(procs), json={"name": " "})
    assert r.status_code == 400 and r.json()["violations"][0]["field"] == "name", r.text
    r = await http.post("/api/v1/admin/accounts/999999/keys", headers=_admin(procs), json={})
    assert r.status_code == 404, r.text


async def test_admin_service_is_off_without_an_admin_key(stack: Stack) -> None:
    """A server started without EVENTFLOW_ADMIN_KEY answers admin routes with 403."""
    r = await stack.http.post("/api/v1/admin/accounts", headers=stack.auth(),
                              json={"name": "x"})
    assert r.status_code == 403, r.text
    assert "EVENTFLOW_ADMIN_KEY" in r.json()["error"]


async def test_no_cache_while_revocations_cannot_arrive(stack: Stack) -> None:
    """A resolver whose feed cannot reach Redis caches nothing: a key deleted behind its
    back (no announcement) is refused on its next use."""
    resolver = KeyResolver(stack.engine)
    feed = RevocationFeed(redis_url=f"redis://127.0.0.1:{free_port()}", prefix="nowhere:")
    feed.start(on_revoked=resolver.forget, on_live=resolver.set_live)
    try:
        key_id, key = await add_key(stack.engine, account_id=stack.account_id, label="t")
        assert await resolver.account_for(key) == stack.account_id
        assert await resolver.account_for(key) == stack.account_id
        await revoke_key(stack.engine, key_id=key_id)
        with pytest.raises(Unauthenticated):
            await resolver.account_for(key)
    finally:
        await feed.close()
