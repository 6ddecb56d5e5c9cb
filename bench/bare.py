"""The ceilings: a no-op ``grpc.aio`` EventService and a no-op Starlette app.

They use the same proto, messages, server options and server stack (grpc.aio; uvicorn
+ Starlette with the gateway's settings) as eventflow, and do nothing else, so the
ratio of a real row to its bare row is the cost of eventflow's own work.

``python -m bench.bare grpc PORT [--reuse-port]`` or ``python -m bench.bare http PORT``.
With ``--reuse-port`` several gRPC processes can serve one port (SO_REUSEPORT, as
eventflow's server processes do); each prints "listening" once it does.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.app import server_options


class NoopEventService(events_pb2_grpc.EventServiceServicer):  # type: ignore[misc]
    """Answers like EventService without validating or storing anything."""

    async def GenerateEvent(self, request: Any, context: Any) -> Any:
        return events_pb2.GenerateEventResponse(event_id=1)

    async def GenerateEvents(self, request: Any, context: Any) -> Any:
        results = [events_pb2.EventResult(event_id=i + 1, status="ACCEPTED")
                   for i in range(len(request.events))]
        return events_pb2.GenerateEventsResponse(results=results, success_count=len(results))

    async def StreamEvents(self, request_iterator: AsyncIterator[Any], context: Any
                           ) -> AsyncIterator[Any]:
        n = 0
        async for req in request_iterator:
            n += 1
            yield events_pb2.StreamEventsResponse(
                client_ref=req.client_ref, result=events_pb2.EventResult(event_id=n,
                                                                         status="ACCEPTED"))


async def serve_grpc(*, port: int, reuse_port: bool = False) -> None:
    server = grpc.aio.server(options=server_options(reuse_port=reuse_port))
    events_pb2_grpc.add_EventServiceServicer_to_server(NoopEventService(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"bare grpc.aio listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


def http_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def event(request: Request) -> Response:
        await request.body()
        return Response(status_code=200, headers={"X-Event-Id": "1"})

    return Starlette(routes=[Route("/api/v2/event", event, methods=["POST"])])


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "grpc":
        from server.app import install_event_loop

        install_event_loop()
        asyncio.run(serve_grpc(port=port, reuse_port="--reuse-port" in sys.argv[3:]))
    else:
        import uvicorn

        from server.gateway.__main__ import uvicorn_options

        uvicorn.run(http_app(), host="127.0.0.1", port=port, **uvicorn_options())


if __name__ == "__main__":
    main()
