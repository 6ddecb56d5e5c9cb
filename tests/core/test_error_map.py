"""The one error map: every class of the error tree has a gRPC and an HTTP mapping, and a
domain error keeps its status, message, violations and extras from a real gRPC server
through the gateway's answer (in the manner of httpx's tests of its exception mapping).
"""

from __future__ import annotations

import gc
import importlib
import pkgutil
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
import pytest

import server
import server.errors as e
from server.accounts import KeyResolver
from server.api.errors import AuthErrorInterceptor
from server.api.status import GRPC_MAP, ErrorReport
from server.contacts.errors import value_violation
from server.errors import EventflowError, InvalidArgument, Violation
from server.gateway.http import HTTP_MAP, error_response
from server.templating import compile_template
from tests.support import Stack


def _compile_error(source: str) -> e.TemplateError:
    try:
        compile_template(source)
    except e.TemplateError as exc:
        return exc
    raise AssertionError(f"{source!r} compiled")


# One real instance of every class of the tree; a new class needs one here, and mappings.
EXAMPLES: dict[type[EventflowError], EventflowError] = {
    InvalidArgument: InvalidArgument.from_violations([
        Violation("params[0].name", "is required: every param needs a non-empty name"),
        Violation("keyValue", "is 301 characters long; the limit is 300")]),
    e.ContactValidationError: e.ContactValidationError([value_violation(
        path="channels[1].value", value="38050-CALL-ME", reason="is not a phone number")]),
    e.OccurredError: e.OccurredError("OCCURRED_TIME_TOO_DEPTH"),
    e.SegmentationDisabled: e.SegmentationDisabled("productViewed"),
    e.UnsupportedMediaType: e.UnsupportedMediaType("the body must be JSON (got text/plain)"),
    e.TemplateSyntaxInvalid: e.TemplateSyntaxInvalid(
        field="html", error=_compile_error("<p>\n\n#if($x</p>")),
    e.TemplateError: _compile_error("Hello\n#foreach($i in )\nx\n#end"),
    e.WrongFormat: e.WrongFormat("Expecting value: line 1 column 2"),
    e.ReadOnlyError: e.ReadOnlyError(),
    e.RenderLimitExceeded: e.RenderLimitExceeded("the output is over 1048576 characters"),
    e.Unauthenticated: e.Unauthenticated("unknown API key"),
    e.PermissionDenied: e.PermissionDenied("this key may only read"),
    e.NotFound: e.NotFound("no contact with id 7 in this account"),
    e.MethodNotAllowed: e.MethodNotAllowed("GET is not allowed on /api/v2/event"),
    e.Conflict: e.Conflict("the email belongs to contact 3"),
    e.TooLarge: e.TooLarge("the event is 70000 bytes; the limit is 65536"),
    e.RateLimited: e.RateLimited("more than 350 events per second", retry_after=3),
    e.Unavailable: e.Unavailable("the server is shutting down; retry"),
}

# What the gateway answers for each: status, body keys in order, extras, headers.
GENERIC = ["error", "violations"]
EXPECTED: dict[type[EventflowError], tuple[int, list[str], dict[str, Any], dict[str, str]]] = {
    InvalidArgument: (400, GENERIC, {}, {}),
    e.ContactValidationError: (400, GENERIC, {}, {}),
    e.OccurredError: (400, GENERIC, {}, {}),
    e.SegmentationDisabled: (400, GENERIC, {}, {}),
    e.UnsupportedMediaType: (415, GENERIC, {}, {}),
    e.TemplateSyntaxInvalid: (422, ["error", "field", "line", "column", "violations"],
                              {"field": "html", "line": 3, "column": 8}, {}),
    e.TemplateError: (422, ["error", "line", "column", "kind"],
                      {"line": 2, "column": 16, "kind": "syntax"}, {}),
    e.WrongFormat: (422, ["error", "line", "column", "kind"],
                    {"line": None, "column": None, "kind": "wrong_format"}, {}),
    e.ReadOnlyError: (422, ["error", "line", "column", "kind"],
                      {"line": None, "column": None, "kind": "render"}, {}),
    e.RenderLimitExceeded: (422, ["error", "line", "column", "kind"],
                            {"line": None, "column": None, "kind": "limit"}, {}),
    e.Unauthenticated: (401, GENERIC, {}, {"www-authenticate": 'Basic realm="eventflow"'}),
    e.PermissionDenied: (403, GENERIC, {}, {}),
    e.NotFound: (404, GENERIC, {}, {}),
    e.MethodNotAllowed: (405, GENERIC, {}, {}),
    e.Conflict: (409, GENERIC, {}, {}),
    e.TooLarge: (413, GENERIC, {}, {}),
    e.RateLimited: (429, GENERIC, {}, {"retry-after": "3"}),
    e.Unavailable: (503, GENERIC, {}, {}),
}
HINTS = ("retry-after", "www-authenticate")


def _import_server() -> None:
    """Import every module of ``server`` so subclasses defined anywhere are seen."""
    for info in pkgutil.walk_packages(server.__path__, "server."):
        # Scripts and Alembic's migration scripts run on import; they define no errors.
        if not info.name.endswith("__main__") and ".migrations" not in info.name:
            importlib.import_module(info.name)


def tree() -> set[type[EventflowError]]:
    """Every class below ``EventflowError``, wherever it is defined."""
    found: set[type[EventflowError]] = set()
    todo = list(EventflowError.__subclasses__())
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return found


def unmapped(classes: set[type[EventflowError]]) -> set[type[EventflowError]]:
    """The classes with no gRPC row of their own, or whose reason HTTP does not answer."""
    return {c for c in classes if c not in GRPC_MAP or GRPC_MAP[c][1] not in HTTP_MAP}


def test_every_class_of_the_tree_has_both_mappings() -> None:
    """Each class below EventflowError has a gRPC row, an HTTP rule and an example here."""
    _import_server()
    classes = tree()
    assert unmapped(classes) == set()
    assert classes == set(EXAMPLES) == set(EXPECTED)
    assert set(GRPC_MAP) == classes


def test_a_new_class_without_a_mapping_is_found() -> None:
    """A subclass added anywhere shows up in the tree and fails the mapping check."""
    class Unmapped(e.NotFound):
        pass

    try:
        assert Unmapped in tree() and unmapped(tree()) == {Unmapped}
    finally:
        del Unmapped
        gc.collect()
    assert unmapped(tree()) == set()


def test_error_module_exports_exactly_its_public_names() -> None:
    """e.__all__ lists its public names, sorted, as httpx pins its own."""
    public = [name for name, value in vars(e).items()
              if not name.startswith("_") and getattr(value, "__module__", None) == "server.errors"]
    assert e.__all__ == sorted(public, key=str.casefold)


def test_every_exception_in_the_error_module_is_in_the_tree() -> None:
    """No exception class sits in server.errors outside the tree."""
    for name in e.__all__:
        value = getattr(e, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, EventflowError), name


_SERVICE = "eventflow.test.Errors"


def _raise(request: bytes, context: Any) -> bytes:
    name = request.decode()
    if name == "bug":
        raise ZeroDivisionError("a bug in a servicer")
    raise next(ex for c, ex in EXAMPLES.items() if c.__name__ == name)


@pytest.fixture(scope="module")
async def raiser(stack: Stack) -> AsyncIterator[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]]:
    """A real gRPC server on port 0, behind the real interceptor, raising on request."""

    async def handler(request: bytes, context: Any) -> bytes:
        return _raise(request, context)

    srv = grpc.aio.server(interceptors=[AuthErrorInterceptor(KeyResolver(stack.engine))])
    srv.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        _SERVICE, {"Raise": grpc.unary_unary_rpc_method_handler(handler)})])
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield channel.unary_unary(f"/{_SERVICE}/Raise")
    await channel.close()
    await srv.stop(grace=1)


async def _failure(raiser: Any, stack: Stack, name: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raiser(name.encode(), metadata=stack.meta())
    return caught.value


def _pairs(violations: Any) -> list[tuple[str, str]]:
    return [(v.field, v.message) for v in violations]


def _hints(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k in HINTS}


@pytest.fixture(params=sorted(EXAMPLES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def cls(request: pytest.FixtureRequest) -> type[EventflowError]:
    return request.param  # type: ignore[no-any-return]


async def test_round_trip_keeps_status_message_violations_and_extras(
        stack: Stack, raiser: Any, cls: type[EventflowError]) -> None:
    """Domain error -> gRPC status (real server) -> HTTP answer keeps what the caller needs."""
    example = EXAMPLES[cls]
    failure = await _failure(raiser, stack, cls.__name__)
    code, reason = GRPC_MAP[cls]
    assert failure.code() == code and failure.details() == example.message
    report, sent = ErrorReport.from_rpc(failure), ErrorReport.of(example)
    assert (report.code, report.reason, report.message, dict(report.metadata)) == \
        (sent.code, reason, sent.message, dict(sent.metadata))
    assert _pairs(report.violations) == _pairs(sent.violations)

    status, keys, extras, hints = EXPECTED[cls]
    answer = error_response(failure)
    body = orjson.loads(answer.body)
    assert answer.status_code == status and list(body) == keys
    assert body["error"] == example.message
    assert {k: body[k] for k in extras} == extras
    if "violations" in body:
        expected = _pairs(example.violations) if isinstance(example, InvalidArgument) else []
        assert [(v["field"], v["message"]) for v in body["violations"]] == expected
    assert _hints(answer) == hints


async def test_gateway_raised_errors_answer_as_server_raised_ones(
        stack: Stack, raiser: Any, cls: type[EventflowError]) -> None:
    """An error the gateway finds itself gets the same bytes as the same error from the server."""
    via_server = error_response(await _failure(raiser, stack, cls.__name__))
    direct = error_response(EXAMPLES[cls])
    assert (direct.status_code, direct.body) == (via_server.status_code, via_server.body)
    assert direct.headers.items() == via_server.headers.items()


async def test_a_bug_in_a_servicer_is_a_502_without_hints(stack: Stack, raiser: Any) -> None:
    """An unexpected exception: INTERNAL on gRPC, 502 naming the failure over HTTP."""
    failure = await _failure(raiser, stack, "bug")
    assert failure.code() == grpc.StatusCode.INTERNAL
    answer = error_response(failure)
    body = orjson.loads(answer.body)
    assert answer.status_code == 502 and body["error"].startswith(
        "the eventflow server failed (INTERNAL):") and "ZeroDivisionError" not in body["error"]
    assert _hints(answer) == {}


async def test_grpc_size_limit_gets_no_retry_hint(stack: Stack) -> None:
    """gRPC's own RESOURCE_EXHAUSTED (a message over its size limit) is 413, never a retry."""
    channel = grpc.aio.insecure_channel(stack.grpc_target,
                                        options=[("grpc.max_send_message_length", 16)])
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(f"/{_SERVICE}/Raise")(b"x" * 64, metadata=stack.meta())
    finally:
        await channel.close()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    answer = error_response(caught.value)
    assert answer.status_code == 413 and _hints(answer) == {}


def test_only_rate_limits_carry_a_retry_hint() -> None:
    """Retry-After comes with RATE_LIMITED alone; an over-size answer never has one."""
    with_hint = {c for c in EXAMPLES if "retry-after" in error_response(EXAMPLES[c]).headers}
    assert with_hint == {e.RateLimited}


def test_every_http_rule_answers_some_class() -> None:
    """No HTTP rule is left for a reason no class of the tree sends."""
    assert set(HTTP_MAP) == {reason for _code, reason in GRPC_MAP.values()}
