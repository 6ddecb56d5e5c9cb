"""What a letter or webhook call sent is kept with its record and read back by
ConsoleService.GetSentMessage (the console's "View letter"); per account, listings without it."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from eventflow.v1 import console_pb2, console_pb2_grpc, workflows_pb2, workflows_pb2_grpc
from server.mail.sink import MailSink
from tests.support import Stack
from tests.workflows.conftest import create_template, create_workflow, eventually, unique_key
from tests.workflows.test_end_to_end import CART_HTML, CART_TEXT, cart_event
from tests.workflows.test_webhook import Receiver


async def _sent(wf: Stack, workflow_id: int) -> list[Any]:
    reply = await workflows_pb2_grpc.WorkflowServiceStub(wf.channel).ListMessages(
        workflows_pb2.ListMessagesRequest(workflow_id=workflow_id), metadata=wf.meta())
    return [m for m in reply.messages if m.status == "sent"]


async def test_the_letter_as_sent_is_kept(wf: Stack, sink: MailSink) -> None:
    """GetSentMessage answers the rendered subject, HTML and text that reached the SMTP
    server, even after the template changed; another account's id is NOT_FOUND."""
    type_key = unique_key("kept").replace("-", "_")
    tid = await create_template(wf, name="cart", subject="Your cart", html=CART_HTML,
                                text=CART_TEXT)
    wid = await create_workflow(wf, {
        "name": "kept", "active": True, "trigger": {"eventTypeKey": type_key},
        "start": "mail", "blocks": [
            {"id": "mail", "type": "email", "templateId": tid, "to": "${email}",
             "jsonParam": "items"}]})
    email = f"{unique_key('kept')}@ukr.net"
    r = await wf.post_event({**cart_event("site@com.net", email), "eventTypeKey": type_key})
    assert r.status_code == 200, r.text
    (m,) = await eventually(lambda: _sent(wf, wid))
    r = await wf.http.put(f"/api/v1/messages/{tid}", headers=wf.auth(), json={
        "name": "cart", "subject": "Changed", "html": "<p>changed</p>", "text": "changed"})
    assert r.status_code == 200, r.text

    console = console_pb2_grpc.ConsoleServiceStub(wf.channel)
    got = await console.GetSentMessage(console_pb2.GetSentMessageRequest(id=m.id),
                                       metadata=wf.meta())
    (letter,) = [x.message for x in sink.received if email in x.rcpt_tos]
    assert got.kept and got.message.id == m.id and got.message.subject == "Your cart"
    for kept, part in ((got.html, "html"), (got.text, "plain")):
        sent = letter.get_body((part,)).get_content().replace("\r\n", "\n")
        assert kept.strip() == sent.strip()
    assert "Magnolia Nobile Парфумована вода" in got.html and "2341" in got.text
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await console.GetSentMessage(console_pb2.GetSentMessageRequest(id=m.id),
                                     metadata=wf.meta(wf.other_key))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_webhook_calls_body_is_kept(wf: Stack) -> None:
    """A webhook record keeps the JSON it posted, as the receiver got it."""
    receiver = Receiver(failures=0)
    server, task, url = await receiver.start()
    try:
        type_key = unique_key("hook").replace("-", "_")
        wid = await create_workflow(wf, {
            "name": "hook", "active": True, "trigger": {"eventTypeKey": type_key},
            "start": "call", "blocks": [{"id": "call", "type": "webhook", "url": url}]})
        await wf.post_event({"eventTypeKey": type_key, "keyValue": "k1", "params": [
            {"name": "email", "value": "hook@ukr.net"}, {"name": "total", "value": 1500}]})
        (m,) = await eventually(lambda: _sent(wf, wid))
    finally:
        server.should_exit = True
        await task
    got = await console_pb2_grpc.ConsoleServiceStub(wf.channel).GetSentMessage(
        console_pb2.GetSentMessageRequest(id=m.id), metadata=wf.meta())
    assert got.kept and not got.html
    ((_, posted),) = receiver.calls
    assert json.loads(got.text) == posted and posted["params"]["total"] == 1500
