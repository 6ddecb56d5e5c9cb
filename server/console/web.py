"""The console's request plumbing: templates, the signed-in context of a page, CSRF checks
and the one place where gRPC errors become HTML answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import grpc
from google.protobuf import timestamp_pb2
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from server.api.status import ErrorReport
from server.codec.jsondoc import load_document
from server.console.session import SESSION_COOKIE, Session, Sessions, load_secret
from server.errors import EventflowError, InvalidArgument, TooLarge, Violation
from server.gateway.http import error_response
from server.gateway.state import GatewayState

HERE = Path(__file__).parent
StubT = TypeVar("StubT")
NAV = [("overview", "/", "Overview"), ("event-types", "/event-types", "Event types"),
       ("events", "/events", "Event history"), ("messages", "/messages", "Messages"),
       ("workflows", "/workflows", "Workflows"), ("contacts", "/contacts", "Contacts"),
       ("segments", "/segments", "Segments"), ("sent", "/sent", "Sent messages")]


def ts_datetime(ts: timestamp_pb2.Timestamp | None) -> datetime | None:
    """A protobuf time as an aware datetime; None for an unset one."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=UTC)


def _when(value: Any) -> str:
    dt = ts_datetime(value) if isinstance(value, timestamp_pb2.Timestamp) else value
    if dt is None:
        return "—"
    return str(dt.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _iso(value: Any) -> str:
    dt = ts_datetime(value) if isinstance(value, timestamp_pb2.Timestamp) else value
    return "" if dt is None else str(dt.isoformat())


def pretty_json(value: Any) -> str:
    """JSON text (or a value) indented for reading, non-ASCII kept as written."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    text: str = json.dumps(value, indent=2, ensure_ascii=False)
    return text


def read_json(text: str | bytes, name: str) -> Any:
    """JSON a person typed into a form, read by the API's one reader (``load_document``:
    the same refusals, nesting past 32 levels among them, as the JSON API); its
    InvalidArgument names ``name``, and text that does not parse says its line and column."""
    try:
        return load_document(text, name=name)
    except InvalidArgument:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
            raise InvalidArgument(f"the {name} is not valid JSON: {where}", [Violation(
                name, f"is not valid JSON: {where}")]) from None
        except (ValueError, RecursionError):
            pass
        raise


def compact_json(value: Any) -> str:
    """One-line JSON for tables (escaped by the template, not by ``tojson``'s \\u003c)."""
    text: str = json.dumps(value, ensure_ascii=False)
    return text


class Console:
    """What the console holds for the gateway's lifetime."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self.sessions = Sessions(load_secret(state.settings.data_dir))
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"),
                               autoescape=select_autoescape(["html"]),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(when=_when, iso=_iso, pretty=pretty_json, compact=compact_json,
                                urlq=lambda s: quote(str(s), safe=""))
        self.env.globals["nav"] = NAV

    def stub(self, cls: Callable[[grpc.aio.Channel], StubT]) -> StubT:
        return self.state.stub(cls)

    def html(self, request: Request, template: str, *, status: int = 200,
             session: Session | None = None, **context: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(
            request=request, session=session, base_url=str(request.base_url).rstrip("/"),
            http_status=status, **context)
        return HTMLResponse(body, status_code=status, headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"})


# Our own scripts only. Message previews render in sandboxed srcdoc frames, which inherit
# this policy: letters use inline styles and remote images, so those stay allowed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src * data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


# A console form's body, and each field of it, may be this long. The services' own limits
# are below it (a message part 256 KiB, a definition 1 MiB), so an over-long text comes
# back from the service with the form and its text kept, rather than from the parser.
MAX_FORM_BYTES = 4 * 1024 * 1024


def _form_too_large(size: str) -> TooLarge:
    return TooLarge(f"This form sent {size}; the console takes forms of up to "
                    f"{MAX_FORM_BYTES // (1024 * 1024)} MiB ({MAX_FORM_BYTES:,} bytes). "
                    "Nothing was saved.")


async def read_form(request: Request) -> FormData:
    """The request's form (Starlette keeps it for later reads), refused as TooLarge when its
    body is over ``MAX_FORM_BYTES``: a page that says so, never the router's JSON."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise _form_too_large(f"{int(declared):,} bytes")
    try:
        return await request.form(max_part_size=MAX_FORM_BYTES)
    except HTTPException as exc:
        if "maximum size" in str(exc.detail):
            raise _form_too_large("a field longer than that") from None
        raise InvalidArgument(f"the form could not be read: {exc.detail}") from None


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed call as a page shows it: the HTTP status of the gateway's one mapping, the
    sentence, the field violations and the error's metadata (a template's line, column)."""

    status: int
    message: str
    violations: tuple[Violation, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)


def failure(error: EventflowError | grpc.aio.AioRpcError) -> Failure:
    report = (ErrorReport.of(error) if isinstance(error, EventflowError)
              else ErrorReport.from_rpc(error))
    return Failure(status=error_response(report).status_code, message=report.message,
                   violations=report.violations, metadata=dict(report.metadata))


@dataclass(slots=True)
class Page:
    """One signed-in request: the request, its session and the console."""

    request: Request
    session: Session
    console: Console
    section: str

    @property
    def meta(self) -> tuple[tuple[str, str], ...]:
        return self.session.metadata

    def stub(self, cls: Callable[[grpc.aio.Channel], StubT]) -> StubT:
        return self.console.stub(cls)

    def render(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        return self.console.html(self.request, template, status=status, session=self.session,
                                 section=self.section, **context)

    async def form(self) -> dict[str, str]:
        data = await read_form(self.request)
        return {k: v for k, v in data.items() if isinstance(v, str)}


Handler = Callable[[Page], Awaitable[Response]]


def to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def page(console: Console, section: str, fn: Handler, *, changes: bool = False
         ) -> Callable[[Request], Awaitable[Response]]:
    """A signed-in endpoint: no session redirects to sign-in; a request that ``changes``
    something must carry the session's CSRF token (form field or X-CSRF-Token header)."""

    async def endpoint(request: Request) -> Response:
        session = console.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            if request.method != "GET":
                return console.html(request, "error.html", status=401, title="Signed out",
                                    message="Your session has ended; sign in again.")
            return to_login(request)
        ctx = Page(request=request, session=session, console=console, section=section)
        try:
            if changes and request.method != "GET":
                token = request.headers.get("x-csrf-token")
                if token is None and "form" in request.headers.get("content-type", ""):
                    token = str((await read_form(request)).get("csrf_token") or "")
                if not session.csrf_ok(token):
                    return console.html(request, "error.html", status=403, session=session,
                                        title="Form expired",
                                        message="This form was not sent from the current "
                                        "session (CSRF check). Go back, reload the page and "
                                        "try again.")
            return await fn(ctx)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                console.sessions.end(request.cookies.get(SESSION_COOKIE))
                return to_login(request)
            return error_page(ctx, failure(exc))
        except EventflowError as exc:
            return error_page(ctx, failure(exc))

    endpoint.__name__ = getattr(fn, "__name__", "endpoint")
    return endpoint


def error_page(ctx: Page, exc: Failure) -> Response:
    if ctx.request.headers.get("content-type", "").startswith("application/json"):
        # The page's own scripts (preview, import) read the failure as JSON.
        return JSONResponse({"error": exc.message, "violations": [
            {"field": v.field, "message": v.message} for v in exc.violations]}, exc.status)
    titles = {400: "Not valid", 404: "Not found", 409: "Conflict", 413: "Too large",
              503: "Server unavailable"}
    return ctx.render("error.html", status=exc.status, title=titles.get(exc.status, "Error"),
                      message=exc.message, violations=exc.violations)
