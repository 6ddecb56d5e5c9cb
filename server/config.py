"""Typed settings for every eventflow process, read from the environment once at start-up.

The object is passed down explicitly; nothing reads ``os.environ`` after start-up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from server.db.dialect import normalise_database_url

__all__ = ["LOG_LEVELS", "Settings", "normalise_database_url"]


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not an integer; unset it or give a number") from None


def _admin_key(env: Mapping[str, str]) -> str | None:
    raw = env.get("EVENTFLOW_ADMIN_KEY", "").strip()
    if raw and len(raw) < 16:
        raise SystemExit("EVENTFLOW_ADMIN_KEY must be at least 16 characters (it guards "
                         "account and key management); e.g. python -c 'import secrets; "
                         "print(secrets.token_urlsafe(24))'")
    return raw or None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class Settings:
    grpc_addr: str = "127.0.0.1:50051"
    http_addr: str = "127.0.0.1:8080"
    data_dir: Path = Path("./var")
    database_url: str = ""
    redis_url: str | None = None
    redis_prefix: str = "eventflow:"
    api_key: str | None = None
    # EVENTFLOW_CONNECTION_TIMEOUT: seconds a client has for a request head, between body
    # chunks (gateway) and for the HTTP/2 handshake (gRPC server).
    connection_timeout: float = 10.0
    # EVENTFLOW_ADMIN_KEY: the key of AdminService and /api/v1/admin (None: both off).
    admin_key: str | None = None
    max_event_bytes: int = 20480
    rate_limit: int = 350
    server_processes: int = 1
    sqlite_synchronous: str = "FULL"
    # Under ``python -m server``: "process" (one ingest writer process commits for all
    # serving processes) or "inline" (each serving process commits itself, from a
    # writer thread of its own).
    ingest_writer: str = "process"
    # Set by ``python -m server`` for its serving processes: the writer process's socket.
    ingest_writer_socket: str | None = None
    smtp_url: str | None = None
    mail_from: str = "eventflow <noreply@eventflow.local>"
    sweep_interval: float = 5.0
    # Template render processes per serving process (and per worker); see docs/templates.md.
    render_processes: int = 2
    # Convert protobuf Values in pure Python, not with the C codec (server.codec.values).
    pure_python: bool = False
    log_level: str = "INFO"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("EVENTFLOW_DATA_DIR") or "./var")
        db = env.get("DATABASE_URL") or f"sqlite:///{(data_dir / 'eventflow.db').resolve()}"
        sync = (env.get("EVENTFLOW_SQLITE_SYNCHRONOUS") or "FULL").upper()
        if sync not in {"FULL", "NORMAL", "EXTRA"}:
            raise SystemExit("EVENTFLOW_SQLITE_SYNCHRONOUS must be FULL, EXTRA or NORMAL")
        level = (env.get("EVENTFLOW_LOG_LEVEL") or "INFO").upper()
        if level not in LOG_LEVELS:
            raise SystemExit(f"EVENTFLOW_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        writer = (env.get("EVENTFLOW_INGEST_WRITER") or "process").lower()
        if writer not in {"process", "inline"}:
            raise SystemExit("EVENTFLOW_INGEST_WRITER must be process or inline")
        return cls(
            grpc_addr=env.get("EVENTFLOW_GRPC_ADDR") or "127.0.0.1:50051",
            http_addr=env.get("EVENTFLOW_HTTP_ADDR") or "127.0.0.1:8080",
            data_dir=data_dir,
            database_url=normalise_database_url(db),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("EVENTFLOW_REDIS_PREFIX") or "eventflow:",
            api_key=env.get("EVENTFLOW_API_KEY") or None,
            admin_key=_admin_key(env),
            connection_timeout=float(env.get("EVENTFLOW_CONNECTION_TIMEOUT") or 10.0),
            max_event_bytes=_int(env, "EVENTFLOW_MAX_EVENT_BYTES", 20480),
            rate_limit=_int(env, "EVENTFLOW_RATE_LIMIT", 350),
            server_processes=_int(env, "EVENTFLOW_SERVER_PROCESSES", os.cpu_count() or 1),
            sqlite_synchronous=sync,
            ingest_writer=writer,
            smtp_url=env.get("EVENTFLOW_SMTP_URL") or None,
            mail_from=env.get("EVENTFLOW_MAIL_FROM") or "eventflow <noreply@eventflow.local>",
            sweep_interval=float(env.get("EVENTFLOW_SWEEP_INTERVAL") or 5.0),
            render_processes=_int(env, "EVENTFLOW_RENDER_PROCESSES", 2),
            pure_python=env.get("EVENTFLOW_PURE_PYTHON", "").strip() not in ("", "0"),
            log_level=level,
        )

    def to_json(self) -> bytes:
        """The settings for a child process (``from_json``), so it need not read the
        environment again."""
        return json.dumps(asdict(self), default=str).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Settings:
        doc = json.loads(raw)
        doc["data_dir"] = Path(doc["data_dir"])
        return cls(**doc)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def queue_name(self) -> str:
        return f"{self.redis_prefix}queue"
