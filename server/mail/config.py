"""SMTP connection settings parsed from ``EVENTFLOW_SMTP_URL``.

``smtp://[user:pass@]host:port[?starttls=1]``; ``smtps://`` connects with implicit TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    implicit_tls: bool = False
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse the URL; a ValueError names what is wrong with it."""
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError(f"EVENTFLOW_SMTP_URL {url!r} must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError(f"EVENTFLOW_SMTP_URL {url!r} has no host")
        implicit = parts.scheme == "smtps"
        query = parse_qs(parts.query)
        starttls = any(v.lower() in _TRUE for v in query.get("starttls", []))
        timeout = float(query.get("timeout", ["30"])[0])
        return cls(host=parts.hostname, port=parts.port or (465 if implicit else 25),
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   starttls=starttls, implicit_tls=implicit, timeout=timeout)
