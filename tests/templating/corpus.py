"""Loads the Velocity conformance corpus and runs it through Apache Velocity 1.7.

The corpus lives in ``tests/velocity/corpus/*.vtc``: each case starts with a
``==== name [@context] [-n] [-crlf]`` header line and its template is every line up
to the next header. ``@context`` names an entry of ``tests/velocity/contexts.json``
(default ``mixed``); ``-n`` drops the template's final newline; ``-crlf`` makes
its line ends CRLF.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

VELOCITY_DIR = Path(__file__).resolve().parent.parent / "velocity"
CORPUS_DIR = VELOCITY_DIR / "corpus"
BUILD_DIR = VELOCITY_DIR / "build"
JARS = (
    "/usr/share/java/velocity.jar",
    "/usr/share/java/commons-collections3.jar",
    "/usr/share/java/commons-lang.jar",
    "/usr/share/java/gson.jar",
)
DEFAULT_CONTEXT = "mixed"


@dataclass(frozen=True)
class Case:
    """One corpus template with the JSON context it renders against."""

    name: str
    template: str
    context: dict[str, object]


@dataclass(frozen=True)
class Outcome:
    """What an engine made of a case: its output, or the error it raised."""

    output: str | None
    error: str | None


def load_cases() -> list[Case]:
    """Every corpus case, in file then text order."""
    contexts = json.loads((VELOCITY_DIR / "contexts.json").read_text(encoding="utf-8"))
    cases: list[Case] = []
    names: set[str] = set()
    for path in sorted(CORPUS_DIR.glob("*.vtc")):
        for header, body in _split(path.read_text(encoding="utf-8")):
            name, context_name, flags = _parse_header(header)
            if name in names:
                raise ValueError(f"duplicate corpus case {name!r} in {path.name}")
            names.add(name)
            if "-n" in flags:
                body = body.removesuffix("\n")
            if "-crlf" in flags:
                body = body.replace("\n", "\r\n")
            cases.append(Case(name=name, template=body, context=contexts[context_name]))
    return cases


def _split(text: str) -> list[tuple[str, str]]:
    sections: list[tuple[str, str]] = []
    header: str | None = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("==== "):
            if header is not None:
                sections.append((header, "".join(lines)))
            header, lines = line[5:].strip(), []
        else:
            lines.append(line)
    if header is not None:
        sections.append((header, "".join(lines)))
    return sections


def _parse_header(header: str) -> tuple[str, str, set[str]]:
    name, *rest = header.split()
    context = next((word[1:] for word in rest if word.startswith("@")), DEFAULT_CONTEXT)
    flags = {word for word in rest if word.startswith("-")}
    return name, context, flags


def velocity_missing() -> str | None:
    """Why the reference engine cannot run here, or None when it can."""
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            return f"{tool} not found; run tests/velocity/install-deps.sh"
    for jar in JARS:
        if not Path(jar).exists():
            return f"{jar} not found; run tests/velocity/install-deps.sh"
    return None


def run_velocity(cases: list[Case]) -> dict[str, Outcome]:
    """Renders every case with Apache Velocity 1.7 in a single JVM."""
    BUILD_DIR.mkdir(exist_ok=True)
    classpath = ":".join(JARS)
    source = VELOCITY_DIR / "VelocityDriver.java"
    compiled = BUILD_DIR / "VelocityDriver.class"
    if not compiled.exists() or compiled.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(
            ["javac", "-nowarn", "-d", str(BUILD_DIR), "-cp", classpath, str(source)],
            check=True,
        )
    cases_path = BUILD_DIR / "cases.json"
    results_path = BUILD_DIR / "results.json"
    payload = [{"name": c.name, "template": c.template, "context": c.context} for c in cases]
    cases_path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    subprocess.run(
        [
            "java",
            # The driver is short-lived: skip the optimising JIT tiers.
            "-XX:TieredStopAtLevel=1",
            "-cp",
            f"{BUILD_DIR}:{classpath}",
            "VelocityDriver",
            "--batch",
            str(cases_path),
            str(results_path),
        ],
        check=True,
        timeout=120,
    )
    raw = json.loads(results_path.read_text(encoding="utf-8"))
    return {name: Outcome(output=r.get("output"), error=r.get("error")) for name, r in raw.items()}
