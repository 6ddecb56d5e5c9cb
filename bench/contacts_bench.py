"""Bulk upsert of 3,000 contacts on SQLite: the issue's target is under 2 seconds.

Measures what ``POST /api/v1/contacts`` costs on the server: parsing and validating each
contact in the API form, then ``bulk_upsert`` in one transaction. Two rounds: the first
creates 3,000 contacts, the second updates the same 3,000. A figure, not a test.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.accounts import create_account
from server.config import Settings, normalise_database_url
from server.contacts import parse_api_form, parse_field_definition
from server.contacts.bulk import MAX_BULK, bulk_upsert
from server.contacts.fields_store import create_field, load_field_definitions
from server.db.engine import create_engine, migrate_async

TARGET_SECONDS = 2.0


def contact(i: int, *, round_no: int) -> dict[str, Any]:
    return {
        "firstName": f"Name{'a' * (i % 7)}", "lastName": "Petrenko",
        "channels": [{"type": "email", "value": f"user{i}@example.com"},
                     {"type": "sms", "value": f"+38050{1000000 + i}"}],
        "externalCustomerId": f"EXT{i}", "languageCode": "uk", "timeZone": "Europe/Kyiv",
        "address": {"town": "Kyiv", "postcode": "01001"},
        "fields": [{"id": 10001, "value": "23.11.2020"}, {"id": 10002, "value": round_no}],
    }


async def one_round(engine: Any, account_id: int, round_no: int) -> tuple[float, float, int]:
    bodies = [contact(i, round_no=round_no) for i in range(MAX_BULK)]
    started = time.perf_counter()
    async with engine.begin() as conn:
        fields = await load_field_definitions(conn, account_id=account_id)
        items = [(i, parse_api_form(body, fields=fields)) for i, body in enumerate(bodies)]
        parsed = time.perf_counter()
        results = await bulk_upsert(conn, account_id=account_id, items=items,
                                    dedupe_on="email", fields=fields)
    done = time.perf_counter()
    ok = sum(r.status in ("CREATED", "UPDATED") for r in results)
    return parsed - started, done - parsed, ok


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = normalise_database_url(f"sqlite:///{Path(tmp) / 'bench.db'}")
        settings = Settings(database_url=url, data_dir=Path(tmp))  # synchronous=FULL, the default
        await migrate_async(settings)
        engine = create_engine(settings)
        account_id, _ = await create_account(engine, name="bench")
        async with engine.begin() as conn:
            for body in ({"id": 10001, "name": "Birthday", "type": "date"},
                         {"id": 10002, "name": "Visits", "type": "number"}):
                await create_field(conn, account_id=account_id,
                                   definition=parse_field_definition(body))
        print(f"contacts bulk upsert: {MAX_BULK} contacts, SQLite (synchronous=FULL), "
              f"target < {TARGET_SECONDS:.1f} s")
        for round_no, label in ((1, "create"), (2, "update")):
            parse_s, write_s, ok = await one_round(engine, account_id, round_no)
            total = parse_s + write_s
            verdict = "ok" if total < TARGET_SECONDS and ok == MAX_BULK else "OVER TARGET"
            print(f"  {label}: {total:.2f} s total (validate {parse_s:.2f} s, write "
                  f"{write_s:.2f} s), {ok}/{MAX_BULK} written, "
                  f"{MAX_BULK / total:,.0f} contacts/s, {total / TARGET_SECONDS:.0%} of target "
                  f"[{verdict}]")
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
