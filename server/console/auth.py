"""Sign-in with the account's API key, and sign-out."""

from __future__ import annotations

import secrets

import grpc
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from eventflow.v1 import account_pb2, account_pb2_grpc
from server.console.session import LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECONDS
from server.console.web import Console, Page


def safe_next(raw: str | None) -> str:
    """Where to go after sign-in: a path on this site only (no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def login_form(console: Console, request: Request, *, error: str = "",
                     status: int = 200, notice: str = "") -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    response = console.html(request, "login.html", status=status, error=error, notice=notice,
                            login_token=console.sessions.login_token(nonce),
                            next=safe_next(request.query_params.get("next")))
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="lax",
                        secure=_secure(request))
    return response


async def login(console: Console, request: Request) -> Response:
    if request.method == "GET":
        if console.sessions.get(request.cookies.get(SESSION_COOKIE)) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        return await login_form(console, request, notice=(
            "You are signed out." if request.query_params.get("signed_out") == "1" else ""))
    form = await request.form()
    key = str(form.get("api_key") or "").strip()
    if not console.sessions.login_token_ok(request.cookies.get(LOGIN_COOKIE),
                                           str(form.get("login_token") or "")):
        return await login_form(console, request, status=403, error=(
            "The sign-in form expired (or cookies are off). Try again."))
    client = request.client.host if request.client else "?"
    if not console.sessions.may_try(client):
        return await login_form(console, request, status=429, error=(
            "Too many wrong keys from this address; wait a minute and try again."))
    if not key:
        return await login_form(console, request, status=400,
                                error="Enter the API key of your account.")
    try:
        account = await console.stub(account_pb2_grpc.AccountServiceStub).GetAccountInfo(
            account_pb2.GetAccountInfoRequest(), metadata=(("x-api-key", key),), timeout=10)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            console.sessions.failed(client)
            return await login_form(console, request, status=401, error=(
                "That API key is not known. make run prints the key at start-up; it is "
                "also in var/api_key."))
        return await login_form(console, request, status=503, error=(
            f"The eventflow server did not answer ({exc.code().name}); is it running?"))
    cookie, _session = console.sessions.create(api_key=key, account_id=account.org_id,
                                               account_name=account.organisation_name)
    response = RedirectResponse(safe_next(str(form.get("next") or "")), status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True,
                        samesite="lax", secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_COOKIE)
    return response


async def logout(ctx: Page) -> Response:
    ctx.console.sessions.end(ctx.request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
