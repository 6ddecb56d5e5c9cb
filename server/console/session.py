"""Console sessions: sign-in with the account's API key, kept on the gateway side.

The browser holds only a signed random session id (cookie ``ef_session``: HttpOnly,
SameSite=Lax, Secure over HTTPS); the API key it unlocks stays in this process, so signing
out really ends the session and the key never travels back to the browser. Each session has
its own CSRF token, required on every request that changes something. The signing secret is
kept in ``<data dir>/console_secret`` (made on first start, mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from itsdangerous import BadSignature, TimestampSigner

SESSION_COOKIE = "ef_session"
LOGIN_COOKIE = "ef_login"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000
# Failed sign-ins allowed per client address per window before it must wait.
FAILED_SIGNINS = 10
FAILED_WINDOW = 60.0


def load_secret(data_dir: Path) -> bytes:
    """The console's signing secret, created on first use."""
    path = data_dir / "console_secret"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(value + b"\n")
    return value


@dataclass(slots=True)
class Session:
    api_key: str
    account_id: int
    account_name: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    started: float = field(default_factory=time.time)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The gRPC metadata that calls the server as this session's account."""
        return (("x-api-key", self.api_key),)

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, token or "")


class Sessions:
    """Signed-cookie sessions held in memory (a gateway restart signs everybody out)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._signer = TimestampSigner(secret, salt="eventflow-console-session")
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, list[float]] = {}

    def create(self, *, api_key: str, account_id: int, account_name: str) -> tuple[str, Session]:
        """A new session; returns the cookie value and the session."""
        self._expire()
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda sid: self._sessions[sid].started)
            del self._sessions[oldest]
        sid = secrets.token_urlsafe(32)
        session = Session(api_key=api_key, account_id=account_id, account_name=account_name)
        self._sessions[sid] = session
        return self._signer.sign(sid).decode(), session

    def get(self, cookie: str | None) -> Session | None:
        sid = self._sid(cookie)
        if sid is None:
            return None
        session = self._sessions.get(sid)
        if session is not None and time.time() - session.started > SESSION_SECONDS:
            del self._sessions[sid]
            return None
        return session

    def end(self, cookie: str | None) -> None:
        sid = self._sid(cookie)
        if sid is not None:
            self._sessions.pop(sid, None)

    def _sid(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self._signer.unsign(cookie, max_age=SESSION_SECONDS).decode()
        except BadSignature:
            return None

    def _expire(self) -> None:
        now = time.time()
        for sid in [s for s, v in self._sessions.items() if now - v.started > SESSION_SECONDS]:
            del self._sessions[sid]

    # Sign-in form protection: a random pre-session cookie and its HMAC in the form.
    def login_token(self, nonce: str) -> str:
        return hmac.new(self._secret, b"login:" + nonce.encode(), hashlib.sha256).hexdigest()

    def login_token_ok(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.login_token(nonce), token)

    # Guessing keys: a client address gets FAILED_SIGNINS wrong tries per FAILED_WINDOW.
    def may_try(self, client: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures.get(client, []) if now - t < FAILED_WINDOW]
        self._failures[client] = recent
        return len(recent) < FAILED_SIGNINS

    def failed(self, client: str) -> None:
        if len(self._failures) > MAX_SESSIONS:
            self._failures.clear()
        self._failures.setdefault(client, []).append(time.monotonic())
