"""The segment queries use their indexes: each database's plan for them, with sequential
scans discouraged on PostgreSQL (tiny test tables would make any plan a scan), names the
index and never scans the table whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from tests.segments.storage import Db, open_db

QUERIES = {
    "ix_segment_due_at": "SELECT segment_id, contact_id FROM segment_due WHERE due_at <= :t "
                         "ORDER BY due_at LIMIT 500",
    "segment_members_members": "SELECT contact_id FROM segment_members WHERE segment_id = :s "
                               "ORDER BY contact_id LIMIT 500 OFFSET 0",
    "segment_members_count": "SELECT count(*) FROM segment_members WHERE segment_id = :s",
    "segment_members_one": "SELECT contact_id FROM segment_members WHERE segment_id = :s "
                           "AND contact_id = :c",
    "segment_members_contacts": "SELECT segment_id, contact_id FROM segment_members WHERE "
                                "segment_id IN (:s, :s2) AND contact_id IN (:c, :c2)",
    "ix_events_contact_type": "SELECT id, body FROM events WHERE account_id = :a AND "
                              "contact_id IN (:c, :c2) AND event_type_id IN (:s, :s2)",
    "ix_segment_changes_segment": "SELECT * FROM segment_changes WHERE segment_id = :s "
                                  "ORDER BY id DESC LIMIT 50",
}
ARGS = {"t": "2026-12-02 00:00:00+00", "s": 1, "s2": 2, "c": 1, "c2": 2, "a": 1}


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    opened = await open_db(tmp_path_factory.mktemp("segments-plans"))
    yield opened
    await opened.close()


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_query_plan_uses_an_index(db: Db, name: str) -> None:
    """The plan of each segment query reads an index, not the whole table."""
    sql = QUERIES[name]
    table = sql.split(" FROM ")[1].split()[0]
    async with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            rows = (await conn.execute(text("EXPLAIN " + sql), ARGS)).all()
            plan = "\n".join(str(r[0]) for r in rows)
            assert f"Seq Scan on {table}" not in plan, plan
            assert "Index" in plan, plan
        else:
            rows = (await conn.execute(text("EXPLAIN QUERY PLAN " + sql), ARGS)).all()
            plan = "\n".join(str(r[-1]) for r in rows)
            assert f"SEARCH {table} USING" in plan and f"SCAN {table}" not in plan, plan
