"""SegmentService: segment definitions and their members, thin methods over
``server.segments``. Another account's segment is NOT_FOUND."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from eventflow.v1 import segments_pb2, segments_pb2_grpc
from server.accounts import account_time_zone
from server.api.errors import current_account
from server.codec.jsondoc import load_document
from server.codec.values import dt_to_ts
from server.errors import InvalidArgument, NotFound, Violation
from server.segments import queries, store
from server.segments.definition import parse_definition
from server.segments.store import Segment

__all__ = ["PAGE", "SegmentService"]

PAGE = 500


async def _definition(engine: AsyncEngine, text: str) -> Any:
    """The checked definition; without a ``timeZone`` of its own it takes the account's."""
    if not text.strip():
        raise InvalidArgument.from_violations([Violation(
            "body", 'is required: {"name", "conditions": {"all": [...]}}')])
    doc = load_document(text, name="body")
    async with engine.connect() as conn:
        tz = await account_time_zone(conn, account_id=current_account.get())
    return parse_definition(doc, default_zone=tz)


def _segment(s: Segment) -> segments_pb2.Segment:
    out = segments_pb2.Segment(id=s.id, name=s.name, status=s.status, version=s.version,
                               definition_json=orjson.dumps(s.document()).decode(),
                               build_processed=s.build_processed, build_total=s.build_total)
    dt_to_ts(s.created_at, out.created_at)
    dt_to_ts(s.updated_at, out.updated_at)
    if s.built_at is not None:
        dt_to_ts(s.built_at, out.built_at)
    return out


def _page(offset: int, limit: int) -> tuple[int, int]:
    problems = [Violation(name, "must not be negative")
                for name, value in (("offset", offset), ("limit", limit)) if value < 0]
    if problems:
        raise InvalidArgument.from_violations(problems)
    return offset, min(limit or PAGE, PAGE)


class SegmentService(segments_pb2_grpc.SegmentServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _get(self, segment_id: int) -> Segment:
        async with self._engine.connect() as conn:
            return await store.require_segment(conn, account_id=current_account.get(),
                                               segment_id=segment_id)

    async def CreateSegment(self, request: Any, context: Any) -> segments_pb2.Segment:
        definition = await _definition(self._engine, request.definition_json)
        account = current_account.get()
        async with self._engine.begin() as conn:
            segment_id = await store.create_segment(conn, account_id=account,
                                                    definition=definition)
        return _segment(await self._get(segment_id))

    async def UpdateSegment(self, request: Any, context: Any) -> segments_pb2.Segment:
        definition = await _definition(self._engine, request.definition_json)
        async with self._engine.begin() as conn:
            await store.update_segment(conn, account_id=current_account.get(),
                                       segment_id=request.id, definition=definition)
        return _segment(await self._get(request.id))

    async def GetSegment(self, request: Any, context: Any) -> segments_pb2.Segment:
        return _segment(await self._get(request.id))

    async def ListSegments(self, request: Any, context: Any) -> Any:
        async with self._engine.connect() as conn:
            found = await store.list_segments(conn, account_id=current_account.get())
        return segments_pb2.ListSegmentsResponse(segments=[_segment(s) for s in found])

    async def DeleteSegment(self, request: Any, context: Any) -> Any:
        async with self._engine.begin() as conn:
            await store.delete_segment(conn, account_id=current_account.get(),
                                       segment_id=request.id)
        return segments_pb2.DeleteSegmentResponse()

    async def ListSegmentContacts(self, request: Any, context: Any) -> Any:
        offset, limit = _page(request.offset, request.limit)
        async with self._engine.connect() as conn:
            await store.require_segment(conn, account_id=current_account.get(),
                                        segment_id=request.segment_id)
            members = await queries.list_members(conn, segment_id=request.segment_id,
                                                 offset=offset, limit=limit)
            total = await queries.count_members(conn, segment_id=request.segment_id)
        out = segments_pb2.ListSegmentContactsResponse(total_count=total)
        for m in members:
            item = out.contacts.add(contact_id=m.contact_id, email=m.email or "")
            dt_to_ts(m.entered_at, item.entered_at)
        return out

    async def GetSegmentContact(self, request: Any, context: Any) -> Any:
        async with self._engine.connect() as conn:
            await store.require_segment(conn, account_id=current_account.get(),
                                        segment_id=request.segment_id)
            member = await queries.get_member(conn, segment_id=request.segment_id,
                                              contact_id=request.contact_id)
        if member is None:
            raise NotFound(f"contact {request.contact_id} is not in segment "
                           f"{request.segment_id}")
        out = segments_pb2.SegmentContact(contact_id=member.contact_id,
                                          email=member.email or "")
        dt_to_ts(member.entered_at, out.entered_at)
        return out

    async def CountSegment(self, request: Any, context: Any) -> Any:
        async with self._engine.connect() as conn:
            segment = await store.require_segment(conn, account_id=current_account.get(),
                                                  segment_id=request.id)
            count = await queries.count_members(conn, segment_id=request.id)
        return segments_pb2.SegmentCount(count=count, status=segment.status)
