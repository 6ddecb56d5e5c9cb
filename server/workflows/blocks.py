"""What each block type does, written once over ``BlockRuntime``: the engine and the
simulator both call ``execute``. Blocks never touch storage or the network themselves.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import orjson

from server.mail.compose import Letter, message_id_for
from server.templating import TemplateError, build_context
from server.templating.pool import RenderPart
from server.workflows import conditions
from server.workflows.durations import (
    next_weekday_time,
    parse_duration,
    parse_moment,
    parse_time_of_day,
    parse_weekday,
    zone,
)
from server.workflows.refs import substitute, text_of
from server.workflows.runtime import BlockRuntime, RunView, StepFailed, StepOutcome

EXTERNAL = frozenset({"email", "transactional_email", "webhook"})
MAX_SUBJECT = 998
MAX_BODY = 2 * 1024 * 1024


def _sub(run: RunView, value: Any) -> Any:
    return substitute(value, params=run.params, key_value=run.key_value)


def _text(run: RunView, value: Any) -> str:
    return text_of(value, params=run.params, key_value=run.key_value)


async def _timer(block: dict[str, Any], run: RunView, rt: BlockRuntime) -> StepOutcome:
    now = rt.now()
    if "duration" in block:
        wake = now + parse_duration(block["duration"])
    else:
        tz_name = block.get("timeZone")
        if tz_name == "contact":
            contact = await rt.contact(run)
            tz_name = contact.time_zone if contact else None
        try:
            tz = zone(tz_name)
        except ValueError:
            tz = zone(None)
        wake = _until(block["until"], run, now, tz)
    wake = max(wake, now)
    return StepOutcome("done", block.get("next"), wait_until=wake,
                       detail={"until": wake.isoformat()})


def _until(until: dict[str, Any], run: RunView, now: datetime, tz: Any) -> datetime:
    if "param" in until:
        try:
            moment = parse_moment(run.params.get(until["param"]), tz)
        except ValueError as exc:
            raise StepFailed(f"timer: param {until['param']!r}: {exc}") from None
        if "time" in until:
            at = parse_time_of_day(until["time"])
            moment = moment.astimezone(tz).replace(hour=at.hour, minute=at.minute,
                                                   second=at.second, microsecond=0)
        if "offset" in until:
            sign = -1 if str(until["offset"]).startswith("-") else 1
            moment += sign * parse_duration(str(until["offset"]).lstrip("+-"))
        return moment
    weekday = parse_weekday(until["weekday"]) if "weekday" in until else None
    return next_weekday_time(now, weekday=weekday, at=parse_time_of_day(until["time"]), tz=tz)


async def _condition(block: dict[str, Any], run: RunView, rt: BlockRuntime) -> StepOutcome:
    cond = block["conditions"]
    known = {(k, orjson.dumps(a)): await rt.fact(run, k, a) for k, a in conditions.fact_leaves(cond)}
    result = conditions.holds(cond, params=run.params,
                              facts=lambda k, a: known[(k, orjson.dumps(a))])
    return StepOutcome("done", block["onTrue"] if result else block["onFalse"],
                       detail={"result": result})


def _split(block: dict[str, Any], run: RunView) -> StepOutcome:
    # Derived from run and step, so a retried step takes the same branch.
    digest = hashlib.sha256(f"{run.account_id}:{run.run_id}:{run.seq}".encode()).digest()
    roll = int.from_bytes(digest[:8], "big") % 100
    total = 0
    for i, branch in enumerate(block["branches"]):
        total += branch["percent"]
        if roll < total:
            return StepOutcome("done", branch["next"], detail={"branch": i, "roll": roll})
    return StepOutcome("done", block["branches"][-1]["next"], detail={"roll": roll})


async def _email(block: dict[str, Any], run: RunView, rt: BlockRuntime) -> StepOutcome:
    transactional = block["type"] == "transactional_email"
    to = _text(run, block.get("to", "${email}"))
    contact = await rt.contact_by_email(run, to) if to else await rt.contact(run)
    if not to and contact is not None and contact.email:
        to = contact.email
    if not to or "@" not in to:
        return StepOutcome("skipped", block.get("next"),
                           detail={"reason": f"no email address to send to (to: {to!r})"})
    subject, html, text = await rt.template(run, int(block["templateId"]))
    try:
        ctx = build_context(params=run.params, json_param=block.get("jsonParam") or None)
        subject, html, text = await rt.renderer.render(
            [RenderPart(subject, max_output=MAX_SUBJECT * 4, timeout=2.0),
             RenderPart(html, max_output=MAX_BODY, timeout=5.0),
             RenderPart(text, max_output=MAX_BODY, timeout=5.0)], ctx, account_id=run.account_id)
    except TemplateError as exc:
        raise StepFailed(f"template {block['templateId']}: {exc}") from None
    refused = None
    if contact is not None and contact.blacklisted:
        refused = "the recipient is blacklisted"
    elif contact is not None and not contact.subscribed and not transactional:
        refused = "the recipient is unsubscribed (a transactional email would still be sent)"
    letter = Letter(sender=rt.sender, to=to, subject=" ".join(subject.split())[:MAX_SUBJECT],
                    html=html, text=text,
                    message_id=message_id_for(account_id=run.account_id, run_id=run.run_id,
                                              seq=run.seq, sender=rt.sender))
    cid = contact.contact_id if contact else run.contact_id
    delivery = await rt.deliver_email(run, block, letter, cid, refused)
    detail = {"to": to, "messageId": letter.message_id, "status": delivery.status}
    if delivery.status != "sent":
        detail["reason"] = delivery.reason or ""
        return StepOutcome("skipped" if refused else "failed",
                           block.get("next") if refused else None, detail=detail)
    return StepOutcome("done", block.get("next"), detail=detail)


async def _webhook(block: dict[str, Any], run: RunView, rt: BlockRuntime) -> StepOutcome:
    url = _text(run, block["url"])
    contact = await rt.contact(run)
    payload = {"workflowId": run.workflow_id, "runId": run.run_id, "eventId": run.event_id,
               "event": run.trigger, "params": run.params,
               "contact": None if contact is None else {
                   "id": contact.contact_id, "email": contact.email, "phone": contact.phone,
                   **contact.fields}}
    key = f"wf-{run.account_id}-{run.run_id}-{run.seq}"
    delivery = await rt.post_webhook(run, block, url, payload, key)
    detail = {"url": url, "idempotencyKey": key, "status": delivery.status}
    if delivery.status != "sent":
        detail["reason"] = delivery.reason or ""
        return StepOutcome("failed", None, detail=detail)
    return StepOutcome("done", block.get("next"), detail=detail)


async def _contact(block: dict[str, Any], run: RunView, rt: BlockRuntime) -> StepOutcome:
    form: dict[str, Any] = {}
    raw_json = _sub(run, block.get("json")) if block.get("json") else None
    if isinstance(raw_json, str) and raw_json.strip():
        try:
            raw_json = orjson.loads(raw_json)
        except orjson.JSONDecodeError:
            raise StepFailed("json: the value is not a JSON object") from None
    if isinstance(raw_json, dict):
        form.update(raw_json)
    elif raw_json not in (None, ""):
        raise StepFailed("json: the value is not a JSON object")
    for field, key in (("email", "email"), ("phone", "sms")):
        if block.get(field):
            value = _text(run, block[field])
            if value:
                form[key] = value
    create = block["type"] == "create_contact"
    contact_id = await rt.write_contact(run, create=create, form=form)
    if contact_id is None:
        return StepOutcome("skipped", block.get("next"), detail={"reason": "unknown contact"})
    return StepOutcome("done", block.get("next"), detail={"contactId": contact_id})


async def _launch(block: dict[str, Any], run: RunView, rt: BlockRuntime) -> StepOutcome:
    raw = _sub(run, block.get("params", []))
    if isinstance(raw, dict):
        params = [{"name": k, "value": v} for k, v in raw.items()]
    else:
        params = [p for p in raw if isinstance(p, dict) and "name" in p]
    key = _text(run, block.get("keyValue", "${key}"))
    event_id = await rt.launch_event(run, event_type_key=block["eventTypeKey"], key_value=key,
                                     params=params)
    return StepOutcome("done", block.get("next"), detail={"eventId": event_id})


async def execute(block: dict[str, Any], run: RunView, rt: BlockRuntime) -> StepOutcome:
    """One step of ``block`` for ``run``; StepFailed becomes a failed outcome."""
    kind = block["type"]
    try:
        if kind == "timer":
            return await _timer(block, run, rt)
        if kind == "condition":
            return await _condition(block, run, rt)
        if kind == "split":
            return _split(block, run)
        if kind in ("email", "transactional_email"):
            return await _email(block, run, rt)
        if kind == "webhook":
            return await _webhook(block, run, rt)
        if kind in ("create_contact", "update_contact"):
            return await _contact(block, run, rt)
        if kind == "launch_event":
            return await _launch(block, run, rt)
        return StepOutcome("done", None)
    except StepFailed as exc:
        return StepOutcome("failed", None, detail={"reason": exc.reason})


def backoff(attempt: int, *, base: float, cap: float = 600.0) -> timedelta:
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))
