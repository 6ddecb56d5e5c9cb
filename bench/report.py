"""The bench table and ``bench/results/latest.json``."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


@dataclass
class Row:
    name: str
    result: dict[str, Any]
    ceiling: str | None = None  # name of the bare row this one is compared with
    target: str = ""
    ratio: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def fill_ratios(rows: list[Row]) -> None:
    by_name = {r.name: r for r in rows}
    for row in rows:
        base = by_name.get(row.ceiling or "")
        if base is not None and base.result.get("events_per_s"):
            row.ratio = round(row.result["events_per_s"] / base.result["events_per_s"], 3)


def _fmt(value: Any, spec: str) -> str:
    return format("-", f">{spec.split('.')[0]}") if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    head = (f"{'scenario':<60} {'events/s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'CPU us/ev':>9} {'errors':>6} {'load':>6}  target")
    lines = [head, "-" * len(head)]
    for r in rows:
        res = r.result
        if r.notes.get("informational"):
            ratio = "info"
        elif r.ratio is not None:
            ratio = f"{r.ratio:.0%}"
        else:
            ratio = "ceil" if r.ceiling is None else "-"
        errors = "FAILED" if res.get("failed") else res.get("errors", 0)
        gen = {"h2load": "h2load", "python": "py"}.get(res.get("loadgen", ""), "-")
        lines.append(
            f"{r.name:<60} {_fmt(res.get('events_per_s'), '9.0f')} {ratio:>6} "
            f"{_fmt(res.get('p50_ms'), '7.2f')} {_fmt(res.get('p99_ms'), '7.2f')} "
            f"{_fmt(res.get('server_cpu_us_per_event'), '9.0f')} {errors:>6} {gen:>6}  "
            f"{r.target}".rstrip())
    return "\n".join(lines)


def errors_footer(rows: list[Row]) -> str:
    """The first error of every row that had one (failed pre-checks included)."""
    lines = [f"  {r.name}: {' '.join(str(r.result.get('first_error') or '?').split())[:300]}"
             for r in rows if r.result.get("errors")]
    return "errors:\n" + "\n".join(lines) if lines else ""


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_at_start": list(os.getloadavg()),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_json(rows: list[Row], meta: dict[str, Any]) -> Path:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "rows": [asdict(r) for r in rows]}
    RESULTS.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return RESULTS
