"""``python -m server.accounts create|keys|revoke``: accounts and API keys from a shell.

Works on the deployment the environment describes (``DATABASE_URL``, ``REDIS_URL`` or the
embedded Valkey of ``EVENTFLOW_DATA_DIR``), with the server running or not. ``revoke``
announces the revocation to the serving processes and waits for them to confirm.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from server.accounts import add_key, create_account, list_keys, revoke_key
from server.config import Settings
from server.db.engine import create_engine, migrate_async
from server.embedded import running_embedded_url
from server.errors import InvalidArgument, NotFound
from server.keyrevocation import announce_revocation


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server.accounts",
                                     description="Create accounts, list, add and revoke keys.")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="a new account and its first API key")
    create.add_argument("name")
    create.add_argument("--email", default=None, help="the owner's address (optional)")
    keys = sub.add_parser("keys", help="an account's keys (ids and labels), or a new one")
    keys.add_argument("account_id", type=int)
    keys.add_argument("--add", metavar="LABEL", default=None, help="create a key so labelled")
    revoke = sub.add_parser("revoke", help="delete a key; every serving process stops "
                            "accepting it before this returns")
    revoke.add_argument("key_id", type=int)
    return parser


async def _run(args: argparse.Namespace, settings: Settings) -> str:
    await migrate_async(settings)
    engine = create_engine(settings)
    try:
        if args.command == "create":
            account_id, key = await create_account(engine, name=args.name, email=args.email)
            return f"account {account_id} created\nAPI key (shown once): {key}"
        if args.command == "keys" and args.add is not None:
            key_id, key = await add_key(engine, account_id=args.account_id, label=args.add)
            return f"key {key_id} created for account {args.account_id}\nAPI key (shown once): {key}"
        if args.command == "keys":
            rows = await list_keys(engine, account_id=args.account_id)
            return "\n".join(["id\tlabel\tcreated"] + [
                f"{k.key_id}\t{k.label}\t{k.created_at.isoformat(timespec='seconds')}"
                for k in rows])
        account_id, key_hash = await revoke_key(engine, key_id=args.key_id)
    finally:
        await engine.dispose()
    return _revoked(args.key_id, account_id, await _announce(settings, key_hash))


async def _announce(settings: Settings, key_hash: str) -> tuple[int, int] | None:
    url = settings.redis_url or running_embedded_url(settings)
    if url is None:
        return None
    return await announce_revocation(redis_url=url, prefix=settings.redis_prefix,
                                     key_hash=key_hash)


def _revoked(key_id: int, account_id: int, told: tuple[int, int] | None) -> str:
    head = f"key {key_id} of account {account_id} revoked"
    if told is None:
        return (f"{head}; Redis was not reachable, so no serving process was told (a process "
                "keeps no key cache while it cannot hear revocations)")
    confirmed, subscribed = told
    return f"{head}; {confirmed} of {subscribed} serving processes confirmed"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        print(asyncio.run(_run(args, Settings.from_env())))
    except NotFound as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except InvalidArgument as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0
