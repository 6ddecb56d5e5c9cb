"""A render child: ``python -m server.templating.renderproc MEMORY_BYTES``.

Reads render jobs from stdin and answers on stdout, one length-prefixed frame each
(see ``server.templating.pool``). It runs with an address-space limit and a lower CPU
priority, so a template that escapes the sandbox's own budgets costs only this process,
which the pool then kills.
"""

from __future__ import annotations

import os
import pickle
import resource
import struct
import sys
from typing import Any, BinaryIO

import orjson

from server.errors import RenderLimitExceeded, TemplateError
from server.procs import lower_priority
from server.templating.engine import compile_template

HEADER = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame's payload, None at end of input."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    payload = stream.read(size)
    return payload if len(payload) == size else None


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def error_reply(exc: TemplateError) -> dict[str, Any]:
    return {"error": {"kind": exc.kind, "reason": exc.reason, "line": exc.line,
                      "column": exc.column}}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Renders every part of ``job`` against its context; the first failure answers.
    A job of ``jobs`` (``RenderPool.render_many``) answers ``replies``, one per job."""
    if "jobs" in job:
        return {"replies": [run_job(one) for one in job["jobs"]]}
    out: list[str] = []
    try:
        for text, max_output, timeout in job["parts"]:
            out.append(compile_template(text).render(job["context"], max_output=max_output,
                                                     timeout=timeout))
    except TemplateError as exc:
        return error_reply(exc)
    return {"ok": out}


def serve(memory_bytes: int, stdin: BinaryIO, stdout: BinaryIO) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    lower_priority()
    write_frame(stdout, b'{"ready": true}')
    while (payload := read_frame(stdin)) is not None:
        try:
            reply = run_job(pickle.loads(payload))
        except MemoryError:
            # The address-space limit: answer, then end so the pool starts a fresh child.
            reply = error_reply(RenderLimitExceeded("render needs more memory than allowed"))
            reply["exit"] = True
        except Exception as exc:  # noqa: BLE001 - a bug must answer the caller, not hang it
            reply = error_reply(TemplateError(f"render failed: {type(exc).__name__}: {exc}"))
            reply["exit"] = True
        write_frame(stdout, orjson.dumps(reply))
        if reply.get("exit"):
            return


def main() -> None:
    # Frames only on stdout: anything printed by mistake must not corrupt the protocol.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(int(sys.argv[1]), sys.stdin.buffer, stdout)


if __name__ == "__main__":
    main()
