"""A signed-in browser stand-in over real HTTP: cookies, the sign-in form and CSRF tokens."""

from __future__ import annotations

import re
from html import unescape
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tests.support import Stack

_TOKEN = re.compile(r'name="(login_token|csrf_token)" value="([^"]+)"')


def form_token(html: str, name: str) -> str:
    for found, value in _TOKEN.findall(html):
        if found == name:
            return value
    raise AssertionError(f"no {name} in the page")


class ConsoleClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=20, follow_redirects=False)
        self.csrf = ""

    async def sign_in(self, key: str, *, next_path: str = "/") -> httpx.Response:
        page = await self.http.get("/login")
        token = form_token(page.text, "login_token")
        reply = await self.http.post("/login", data={"api_key": key, "login_token": token,
                                                     "next": next_path})
        if reply.status_code == 303:
            home = await self.http.get("/")
            self.csrf = form_token(home.text, "csrf_token")
        return reply

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, **kw)

    async def post_form(self, path: str, data: dict[str, str], *, csrf: bool = True
                        ) -> httpx.Response:
        body = {**data, "csrf_token": self.csrf} if csrf else data
        return await self.http.post(path, data=body)

    async def preview(self, doc: dict[str, Any], *, csrf: bool = True) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        return await self.http.post("/messages/preview", json=doc, headers=headers)

    async def aclose(self) -> None:
        await self.http.aclose()


async def signed_in(stack: Stack) -> ConsoleClient:
    """A client signed in with ``stack``'s own key."""
    c = ConsoleClient(stack.http_url)
    assert (await c.sign_in(stack.api_key)).status_code == 303
    return c


def flat(html: str) -> str:
    """A page's text: tags dropped, entities read, white space folded."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))
