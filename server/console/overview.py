"""Screen 1, Overview: events per hour per type, runs by status, messages, the backlog."""

from __future__ import annotations

from starlette.responses import Response

from eventflow.v1 import console_pb2, console_pb2_grpc
from server.console.chart import hourly_chart
from server.console.web import Page, ts_datetime


async def overview(ctx: Page) -> Response:
    o = await ctx.stub(console_pb2_grpc.ConsoleServiceStub).GetOverview(
        console_pb2.GetOverviewRequest(), metadata=ctx.meta)
    since = ts_datetime(o.since)
    assert since is not None
    chart = hourly_chart(since=since, series=[(t.event_type_key, list(t.hourly))
                                              for t in o.types])
    runs = {s.status: s.count for s in o.runs_by_status}
    messages = {s.status: s.count for s in o.messages_by_status}
    return ctx.render(
        "overview.html", o=o, chart=chart, runs=runs, messages=messages,
        today=sum(t.today for t in o.types), last_hour=sum(t.last_hour for t in o.types),
        run_statuses=["running", "waiting", "completed", "stopped", "failed"])
