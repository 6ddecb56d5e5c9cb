"""Event-type settings: ``GET /api/v1/event-types/{eventTypeKey}`` (settings and the
recorded structure of its params) and ``PATCH`` of the same path (only the members sent
change). The body's JSON types are checked here, by path; the rules on names and the key
are the server's (``server.eventtypes.settings``), named as the same paths."""

from __future__ import annotations

from typing import Any

from google.protobuf import timestamp_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import event_types_pb2, event_types_pb2_grpc, events_pb2
from server.errors import InvalidArgument, Violation
from server.gateway.http import auth_metadata, endpoint, json_response, read_json
from server.gateway.params import only_members, only_query
from server.gateway.state import GatewayState

__all__ = ["MEMBERS", "event_type_json", "patch_request", "routes"]

MAX_BODY = 256 * 1024
MEMBERS = ("segmentation", "createContacts", "validateParams")
RULE_MEMBERS = ("name", "required")


def _iso(ts: timestamp_pb2.Timestamp) -> str | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime().isoformat(timespec="milliseconds") + "Z"


def event_type_json(t: events_pb2.EventType, *, params: bool = True) -> dict[str, Any]:
    """An event type as the HTTP API shows it; ``params``: with its recorded structure."""
    out: dict[str, Any] = {
        "id": t.id, "key": t.key, "createdAt": _iso(t.created_at), "eventCount": t.event_count,
        "segmentation": t.segmentation, "segmentationSince": _iso(t.segmentation_since),
        "createContacts": t.create_contacts,
        "validateParams": [{"name": r.name, "required": r.required} for r in t.validate_params],
    }
    if params:
        out["params"] = [{"name": p.name, "count": p.count,
                          "types": {c.type: c.count for c in p.types},
                          "firstSeen": _iso(p.first_seen), "lastSeen": _iso(p.last_seen)}
                         for p in t.params]
    return out


def _bool(doc: dict[str, Any], name: str, where: str, out: list[Violation]) -> bool | None:
    if name not in doc:
        return None
    value = doc[name]
    if not isinstance(value, bool):
        out.append(Violation(where, "must be true or false"))
        return None
    return value


def patch_request(key: str, raw: Any) -> event_types_pb2.UpdateEventTypeRequest:
    """The PATCH body as the request it stands for; 400 naming each member that is unknown
    or of the wrong JSON type."""
    doc = only_members(raw, MEMBERS)
    out: list[Violation] = []
    req = event_types_pb2.UpdateEventTypeRequest(key=key)
    for member, field in (("segmentation", "segmentation"), ("createContacts", "create_contacts")):
        value = _bool(doc, member, member, out)
        if value is not None:
            setattr(req, field, value)
    if "validateParams" in doc:
        rules = doc["validateParams"]
        if not isinstance(rules, list):
            out.append(Violation("validateParams", 'must be a list such as '
                                 '[{"name": "orderId", "required": true}] ([] for none)'))
        else:
            req.validate_params.SetInParent()
            for index, rule in enumerate(rules):
                where = f"validateParams[{index}]"
                if not isinstance(rule, dict):
                    out.append(Violation(where, 'must be an object {"name", "required"}'))
                    continue
                unknown = [m for m in rule if m not in RULE_MEMBERS]
                out += [Violation(f"{where}.{m}", "is not a member of a param rule; it takes "
                                  "name, required") for m in unknown]
                name = rule.get("name")
                if not isinstance(name, str):
                    out.append(Violation(f"{where}.name", "is required: a string, the "
                                         "param's name" if name is None else "must be a string"))
                    name = ""
                if "required" not in rule:
                    out.append(Violation(f"{where}.required", "is required: true or false"))
                required = _bool(rule, "required", f"{where}.required", out)
                req.validate_params.params.add(name=name, required=bool(required))
    if out:
        raise InvalidArgument.from_violations(out)
    return req


def routes(state: GatewayState) -> list[Route]:
    def stub() -> event_types_pb2_grpc.EventTypeServiceStub:
        return state.stub(event_types_pb2_grpc.EventTypeServiceStub)

    @endpoint
    async def get_one(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        reply = await stub().GetEventType(event_types_pb2.GetEventTypeRequest(
            key=request.path_params["key"]), metadata=meta)
        return json_response(event_type_json(reply))

    @endpoint
    async def patch(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        req = patch_request(request.path_params["key"],
                            await read_json(request, limit=MAX_BODY))
        reply = await stub().UpdateEventType(req, metadata=meta)
        return json_response(event_type_json(reply))

    return [
        Route("/api/v1/event-types/{key}", get_one, methods=["GET"]),
        Route("/api/v1/event-types/{key}", patch, methods=["PATCH"]),
    ]
