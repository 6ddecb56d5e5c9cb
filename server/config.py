"""Typed settings for every eventflow process, read from the environment once at start-up.

The object is passed down explicitly; nothing reads ``os.environ`` after start-up.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from server.db.dialect import normalise_database_url
from server.parentdeath import stop_with_parent

__all__ = ["LOG_LEVELS", "SETTINGS_ON_STDIN", "Settings", "normalise_database_url"]


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


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SystemExit(f"{name}={raw!r} is not a number of seconds above 0; unset it or "
                         "give one such as 0.5")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Given by ``procs.spawn``: the settings come on stdin from the process that started us.
SETTINGS_ON_STDIN = "--settings-on-stdin"


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
    # EVENTFLOW_KEEP_ALIVE: seconds the gateway keeps an idle keep-alive connection open
    # between requests; longer than the idle expiry of common client pools (httpx 5 s,
    # aiohttp 15 s, load balancers 60 s), so the client always lets go first.
    keep_alive: float = 75.0
    # EVENTFLOW_ADMIN_KEY: the key of AdminService and /api/v1/admin (None: both off).
    admin_key: str | None = None
    max_event_bytes: int = 20480
    rate_limit: int = 350
    # EVENTFLOW_RATE_BURST: events an idle account may send at once (0: the rate).
    rate_burst: int = 0
    server_processes: int = 1
    # EVENTFLOW_WORKER_PROCESSES: worker processes ``python -m workers`` runs (docs/workers.md).
    worker_processes: int = 1
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
    # First retry delays (seconds, doubling per try) of failed event processing, workflow
    # steps and API messages; the tests shorten them.
    process_retry_base: float = 1.0
    workflow_retry_base: float = 5.0
    message_retry_base: float = 5.0

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
        if _int(env, "EVENTFLOW_RATE_BURST", 0) < 0 or _int(env, "EVENTFLOW_RATE_LIMIT", 350) < 0:
            raise SystemExit("EVENTFLOW_RATE_LIMIT and EVENTFLOW_RATE_BURST must be 0 or more "
                             "(EVENTFLOW_RATE_LIMIT=0 turns the limit off)")
        workers = _int(env, "EVENTFLOW_WORKER_PROCESSES", os.cpu_count() or 1)
        if workers < 1:
            raise SystemExit(f"EVENTFLOW_WORKER_PROCESSES={workers} must be at least 1")
        return cls(
            grpc_addr=env.get("EVENTFLOW_GRPC_ADDR") or "127.0.0.1:50051",
            http_addr=env.get("EVENTFLOW_HTTP_ADDR") or "127.0.0.1:8080",
            data_dir=data_dir,
            database_url=normalise_database_url(db),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("EVENTFLOW_REDIS_PREFIX") or "eventflow:",
            api_key=env.get("EVENTFLOW_API_KEY") or None,
            admin_key=_admin_key(env),
            connection_timeout=_seconds(env, "EVENTFLOW_CONNECTION_TIMEOUT", 10.0),
            keep_alive=_seconds(env, "EVENTFLOW_KEEP_ALIVE", 75.0),
            max_event_bytes=_int(env, "EVENTFLOW_MAX_EVENT_BYTES", 20480),
            rate_limit=_int(env, "EVENTFLOW_RATE_LIMIT", 350),
            rate_burst=_int(env, "EVENTFLOW_RATE_BURST", 0),
            server_processes=_int(env, "EVENTFLOW_SERVER_PROCESSES", os.cpu_count() or 1),
            worker_processes=workers,
            sqlite_synchronous=sync,
            ingest_writer=writer,
            smtp_url=env.get("EVENTFLOW_SMTP_URL") or None,
            mail_from=env.get("EVENTFLOW_MAIL_FROM") or "eventflow <noreply@eventflow.local>",
            sweep_interval=_seconds(env, "EVENTFLOW_SWEEP_INTERVAL", 5.0),
            process_retry_base=_seconds(env, "EVENTFLOW_PROCESS_RETRY_BASE", 1.0),
            workflow_retry_base=_seconds(env, "EVENTFLOW_WORKFLOW_RETRY_BASE", 5.0),
            message_retry_base=_seconds(env, "EVENTFLOW_MESSAGE_RETRY_BASE", 5.0),
            render_processes=_int(env, "EVENTFLOW_RENDER_PROCESSES", 2),
            pure_python=env.get("EVENTFLOW_PURE_PYTHON", "").strip() not in ("", "0"),
            log_level=level,
        )

    @classmethod
    def load(cls, argv: list[str] | None = None) -> Settings:
        """This process's settings: from its parent (``procs.spawn``; the process then
        stops when that parent dies, ``server.parentdeath``), else the environment."""
        if SETTINGS_ON_STDIN in (sys.argv if argv is None else argv):
            stop_with_parent()
            return cls.from_json(sys.stdin.buffer.read())
        return cls.from_env()

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
