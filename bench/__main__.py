"""``make bench``: every ingest path of eventflow beside its bare no-op ceiling, one table.

All rows are measured in this run on this machine, the load generator in a process of
its own: h2load (bench/h2load.py) for the closed-loop unary, batch and HTTP rows when it
is installed, the Python generator (bench/load.py) for the rest or when ``BENCH_LOADGEN=
python``. SQLite always; PostgreSQL too when ``DATABASE_URL`` points to one. Rate limit
off, no arq worker (jobs are enqueued to Valkey/Redis and stay queued). Writes
``bench/results/latest.json``; then runs the feature benches beside this file, if present
(workers_bench.py: the workers, with make run's whole stack; docs/bench.md, "Workers").
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import h2load, stack
from bench.report import Row, errors_footer, fill_ratios, machine, table, write_json

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
SCENARIOS: dict[str, dict[str, Any]] = {
    "GenerateEvent unary c=1": {"kind": "unary", "concurrency": 1},
    # Eight connections: SO_REUSEPORT hashes connections onto the server processes, and
    # with four the split was often 3:1.
    "GenerateEvent unary c=64": {"kind": "unary", "concurrency": 64, "connections": 8},
    "GenerateEvents 500 x 1 KB, c=2": {"kind": "batch", "concurrency": 2, "batch": 500},
    "StreamEvents 2 streams, window 128": {"kind": "stream", "concurrency": 2, "window": 128},
    "unary at 1,000 ev/s offered": {"kind": "rate", "rate": 1000, "seconds": 5},
}
HTTP = {"kind": "http", "concurrency": 32}
TARGETS = {
    "GenerateEvent unary c=64": ">= 60% of bare and >= 3,000 ev/s",
    "GenerateEvents 500 x 1 KB, c=2": ">= 15,000 ev/s",
    "unary at 1,000 ev/s offered": "p99 <= 10 ms",
}
FEATURE_BENCHES = ("templates_bench.py", "contacts_bench.py", "workers_bench.py",
                   "segments_bench.py")
X2 = "GenerateEvent unary c=64"  # the informational row of two no-op processes


def _spec(spec: dict[str, Any], target: str, database_url: str = "") -> dict[str, Any]:
    out = {"seconds": SECONDS, "warmup": 1.0, **spec, "target": target}
    if database_url:
        out["database_url"] = database_url  # h2load rows count the events stored
    return out


def measure(name: str, spec: dict[str, Any], watch: stack.Service, tmp: Path,
            **row: Any) -> Row:
    """One row; a row whose request fails when sent once is reported, not measured."""
    try:
        if gone := watch.exited():
            raise stack.RowFailed(gone)
        result = stack.run_load(spec, watch=watch, workdir=tmp)
        if gone := watch.exited():
            print(f"!! during {name}: {gone}", file=sys.stderr, flush=True)
            result["first_error"] = f"{gone.splitlines()[0]} {result.get('first_error', '')}"
    except stack.RowFailed as exc:
        print(f"!! ROW FAILED: {name}: {exc}", file=sys.stderr, flush=True)
        result = {"events_per_s": 0.0, "calls_per_s": 0.0, "events": 0, "calls": 0,
                  "p50_ms": None, "p99_ms": None, "errors": 1, "first_error": str(exc),
                  "failed": True, "loadgen": stack.LOADGEN["name"]}
    split = result.get("server_cpu_split")
    print(f"  {name}: {result['events_per_s']:.0f} ev/s, {result.get('errors', 0)} errors "
          f"({result.get('loadgen')}"
          f"{', CPU split over the processes ' + str(split) if split else ''})", flush=True)
    return Row(name, result, **row)


def bare_rows(tmp: Path) -> list[Row]:
    rows = []
    with stack.bare_grpc(tmp / "bare-grpc.log") as bare:
        for name, spec in SCENARIOS.items():
            rows.append(measure(f"bare grpc.aio: {name}", _spec(spec, bare.target), bare, tmp))
    # What both cores do for a no-op; informational, not a ceiling (that is one process).
    with stack.bare_grpc(tmp / "bare-grpc-x2.log", processes=2) as bare2:
        rows.append(measure(f"bare grpc.aio x2 processes: {X2}",
                            _spec(SCENARIOS[X2], bare2.target), bare2, tmp,
                            notes={"informational": True}))
    return rows


def eventflow_rows(tmp: Path, *, db: str, url: str, redis_url: str, processes: int,
                   only: tuple[str, ...] | None = None, synchronous: str = "FULL",
                   tag: str = "", gateway: bool = False) -> list[Row]:
    data = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{db}-"))
    database_url = url or f"sqlite:///{data / 'eventflow.db'}"
    env = stack.server_env(data_dir=data, database_url=database_url, redis_url=redis_url,
                           processes=processes, synchronous=synchronous)
    label = f"{db}, {processes} proc{tag}"
    rows = []
    with stack.eventflow_server(env, tmp / f"server-{data.name}.log") as server:
        for name, spec in SCENARIOS.items():
            if only is not None and name not in only:
                continue
            rows.append(measure(f"{name} ({label})",
                                _spec(spec, server.target, database_url), server, tmp,
                                ceiling=f"bare grpc.aio: {name}",
                                target=TARGETS.get(name, "") if not tag and db == "SQLite"
                                else ""))
        if gateway:
            rows += gateway_rows(tmp, env, server)
    return rows


def gateway_rows(tmp: Path, env: dict[str, str], server: stack.Service) -> list[Row]:
    with stack.bare_http(tmp / "bare-http.log") as bare:
        base = measure("bare uvicorn+starlette: POST /api/v2/event c=32",
                       _spec(HTTP, f"http://{bare.target}"), bare, tmp)
    with stack.gateway(env, server.target, tmp / "gateway.log") as gw:
        row = measure("gateway POST /api/v2/event c=32 (SQLite)",
                      _spec(HTTP, f"http://{gw.target}", env["DATABASE_URL"]), gw, tmp,
                      ceiling=base.name, target=">= 50% of bare HTTP")
    return [base, row]


def verdicts(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        if not r.target or r.result.get("failed"):
            continue
        res = r.result
        if "60%" in r.target:
            met = (r.ratio or 0) >= 0.6 and res["events_per_s"] >= 3000
            fig = f"{res['events_per_s']:.0f} ev/s, {r.ratio:.0%} of bare"
        elif "15,000" in r.target:
            met, fig = res["events_per_s"] >= 15000, f"{res['events_per_s']:.0f} ev/s"
        elif "50%" in r.target:
            met, fig = (r.ratio or 0) >= 0.5, f"{r.ratio:.0%} of bare"
        else:
            p99 = res.get("p99_ms") or 1e9
            met, fig = p99 <= 10 and res["events_per_s"] >= 950, f"p99 {p99:.1f} ms"
        r.notes["target_met"] = met
        out.append(f"  {'MET ' if met else 'MISS'} {r.name}: {r.target} -> {fig}")
    return out


def run_feature_benches() -> None:
    here = Path(__file__).resolve().parent
    for name in FEATURE_BENCHES:
        path = here / name
        if path.exists():
            print(f"\n== {name}", flush=True)
            subprocess.run([sys.executable, str(path)], cwd=here.parent, check=False,
                           env=stack._env({}))


def main() -> None:
    meta = {"machine": machine(), "seconds_per_row": SECONDS,
            "notes": "rate limit off; no arq worker (jobs stay queued); SQLite synchronous=FULL "
                     "unless the row says otherwise; CPU us/ev is the server's (all its "
                     "processes) user+system CPU per event in the row"}
    processes = stack.default_processes()
    pg_url = os.environ.get("DATABASE_URL", "")
    loadgen = stack.use_loadgen()
    meta["loadgen"] = (h2load.version(stack.LOADGEN["path"]) + " for unary, batch and HTTP "
                       "rows; Python grpc.aio for StreamEvents and the rate row"
                       if loadgen == "h2load" else "Python (bench/load.py) for every row")
    with tempfile.TemporaryDirectory(prefix="eventflow-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with stack.valkey(tmp) as redis_url:
            print(f"eventflow bench: {SECONDS:g} s per row, load generator in its own process, "
                  f"logs in {tmp}", flush=True)
            rows = bare_rows(tmp)
            rows += eventflow_rows(tmp, db="SQLite", url="", redis_url=redis_url,
                                   processes=processes, gateway=True)
            other = 2 if processes == 1 else 1
            rows += eventflow_rows(tmp, db="SQLite", url="", redis_url=redis_url, processes=other,
                                   only=("GenerateEvent unary c=64", "unary at 1,000 ev/s offered"),
                                   tag=" (compare)")
            rows += eventflow_rows(tmp, db="SQLite", url="", redis_url=redis_url,
                                   processes=processes, only=("GenerateEvent unary c=64",),
                                   synchronous="NORMAL", tag=", synchronous=NORMAL")
            if pg_url.startswith(("postgres://", "postgresql://")):
                with stack.postgres_schema(pg_url) as url:
                    rows += eventflow_rows(tmp, db="PostgreSQL", url=url, redis_url=redis_url,
                                           processes=processes)
    fill_ratios(rows)
    print()
    print(table(rows))
    failures = errors_footer(rows)
    if failures:
        print("\n" + failures)
    print("\ntargets (2-core machine, SQLite durable):")
    print("\n".join(verdicts(rows)))
    path = write_json(rows, meta)
    print(f"\nresults written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    run_feature_benches()


if __name__ == "__main__":
    main()
