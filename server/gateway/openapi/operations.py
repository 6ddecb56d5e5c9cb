"""What each gateway route takes and answers, keyed by (method, path) as the route table
names them; ``build.document`` joins this to the routes the app really has, and
``tests/reliability/test_openapi.py`` fails when the two disagree."""

from __future__ import annotations

from typing import Any

from server.gateway.openapi.schemas import STRING, Schema, array, ref

Operation = dict[str, Any]
JSON = "application/json"


def _content(schema: Schema, media: str = JSON) -> dict[str, Any]:
    return {media: {"schema": schema}}


ERROR = {"description": "refused: the body names the reason and the fields",
         "content": _content(ref("Error"))}
# The refusals every account route can answer; each is an ``Error`` body (docs/errors.md).
_API_ERRORS: dict[str, Any] = {
    "400": {**ERROR, "description": "bad input: the violations name each field"},
    "401": {**ERROR, "description": "no API key, or not one the server knows"},
    "413": {**ERROR, "description": "over a size limit"},
    "429": {**ERROR, "description": "over the account's rate limit (Retry-After: seconds)",
            "headers": {"Retry-After": {"required": True, "schema": {
                "type": "string", "pattern": "^[0-9]+$"}}}},
    "4XX": ERROR,
    "503": {**ERROR, "description": "the database or the server is unavailable"},
}
_JSON_BODY_ERRORS = {"415": {**ERROR, "description": "not UTF-8 JSON"}}


def _ok(schema: Schema | None, status: str = "200", description: str = "done",
        headers: dict[str, Any] | None = None, media: str = JSON) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = _content(schema, media)
    if headers:
        answer["headers"] = headers
    return {status: answer}


def path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": f"the {what}'s id",
            "schema": {"type": "integer", "format": "int64", "minimum": 1}, "example": 1}


def query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    out = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        out["description"] = description
    return out


def api(summary: str, tag: str, answer: dict[str, Any], *, body: Schema | None = None,
        params: list[dict[str, Any]] | None = None, body_required: bool = True) -> Operation:
    """An account route: HTTP Basic (any user, the key as password) or ``x-api-key``."""
    op: Operation = {"summary": summary, "tags": [tag], "responses": {**answer, **_API_ERRORS}}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": _content(body)}
        op["responses"].update(_JSON_BODY_ERRORS)
    return op


def admin(summary: str, answer: dict[str, Any], **kwargs: Any) -> Operation:
    op = api(summary, "admin", answer, **kwargs)
    op["security"] = [{"adminBasic": []}, {"adminKey": []}]
    op["description"] = "Takes the admin key (EVENTFLOW_ADMIN_KEY), never an account's key."
    return op


_HTML = "text/html"


def page(summary: str, *, body: bool = False, params: list[dict[str, Any]] | None = None
         ) -> Operation:
    """A console page (docs/console.md): signed in by its session cookie; signed out, a
    GET is sent to ``/login`` (303) and a form is 401. Forms carry the CSRF token."""
    failure = {"description": "the failure as a page, or as JSON to the page's scripts",
               "content": {_HTML: {"schema": STRING}, JSON: {"schema": ref("Error")}}}
    op: Operation = {"summary": summary, "tags": ["console"], "security": [{"console": []}],
                     "responses": {
                         "200": {"description": "the page", "content": {_HTML: {"schema": STRING},
                                                                       JSON: {"schema": {}}}},
                         "303": {"description": "to the next page or to sign-in"},
                         "4XX": failure}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": False, "content": {
            "application/x-www-form-urlencoded": {"schema": ref("ConsoleForm")},
            JSON: {"schema": ref("ConsoleForm")}}}
    return op


_EVENT_ANSWER = _ok(None, description="stored (committed) before this answer", headers={
    "X-Event-Id": {"required": True, "description": "the stored event's id",
                   "schema": {"type": "string", "pattern": "^[0-9]+$"}}})
_PAGE_QUERY = [query("startindex", {"type": "integer", "minimum": 1}, "first row, from 1"),
               query("maxrows", {"type": "integer", "minimum": 1, "maximum": 500})]
_TOTAL = {"TotalCount": {"description": "rows in all", "schema": {"type": "string"}}}
_LIST_QUERY = [query("pageSize", {"type": "integer", "minimum": 0}),
               query("beforeId", {"type": "integer", "minimum": 0}),
               query("contactId", {"type": "integer", "minimum": 0})]
_TIME = {"type": "string", "format": "date-time"}
_TYPE_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
             "example": "orderCreated"}
_TEXT = "text/plain"
_FULL = query("full", {"type": "boolean"}, "the whole record, not eSputnik's shape")


def _event_post(version: str) -> Operation:
    body = ref("Event" if version == "v2" else "EventV1")
    return api(f"Generate an event (eSputnik {version})", "events", _EVENT_ANSWER, body=body)


_CONSOLE_TYPE_KEY = {"name": "key", "in": "path", "required": True, "schema": STRING,
                     "example": "abandoned_cart"}
_workflow_id = path_id("workflow_id", "workflow")
_run_id = path_id("run_id", "run")
_runs = api("List runs, newest first", "workflows", _ok(ref("Runs")), params=[
    *_LIST_QUERY, query("workflowId", {"type": "integer", "minimum": 0}),
    query("status", STRING)])
_run_messages = api("List workflow messages, newest first", "workflows",
                    _ok(ref("WorkflowMessages")),
                    params=[*_LIST_QUERY, query("workflowId", {"type": "integer", "minimum": 0}),
                            query("runId", {"type": "integer", "minimum": 0})])
_activate = api("Set a workflow active or not", "workflows", _ok(ref("Workflow")),
                params=[_workflow_id])
_unsubscribe = api("Add addresses to the unsubscribed list", "consent", _ok(None),
                   body=ref("Emails"))
_resubscribe = api("Remove addresses from the unsubscribed list", "consent", _ok(None),
                   body=ref("Emails"))
_past_events = api(
    "Store up to 500 past events", "events",
    _ok(ref("PastEventsResult"),
        description="each event's verdict; every event is charged against the rate limit, "
                    "and those past the account's bucket are RATE_LIMITED (nothing of them "
                    "stored: send them again after Retry-After); an event of a type whose "
                    "segmentation is off is EVENT_SEGMENTATION_DISABLED (nothing of it "
                    "stored: switch it on with PATCH /api/v1/event-types/{key}). Accepted "
                    "events are linked to their contacts and count for segments at their "
                    "occurred time; they start no workflow",
        headers={"Retry-After": {
            "required": False, "description": "when some events are RATE_LIMITED: seconds "
                                              "until the first of them would be allowed",
            "schema": {"type": "string", "pattern": "^[0-9]+$"}}}),
    body=ref("PastEvents"))
_version = api("The server's version", "account", _ok(ref("Version")))
_field_id, _contact_id = path_id("item_id", "field"), path_id("item_id", "contact")
_segment_id = path_id("segment_id", "segment")

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/healthz"): {"summary": "Whether the gRPC server is serving", "tags": ["health"],
                          "security": [], "responses": {
                              **_ok(ref("Health")),
                              "503": {"description": "not serving",
                                      "content": _content(ref("Health"))}}},
    ("GET", "/openapi.json"): {"summary": "This document", "tags": ["health"], "security": [],
                               "responses": _ok({"type": "object"})},
    # events
    ("POST", "/api/v2/event"): _event_post("v2"),
    ("POST", "/api/v2/event/"): _event_post("v2"),
    ("POST", "/api/v1/event"): _event_post("v1"),
    ("POST", "/api/v1/event/"): _event_post("v1"),
    ("POST", "/api/v2/past_events"): _past_events,
    ("POST", "/api/v2/past_events/"): _past_events,
    ("GET", "/api/v1/event-types"): api("List event types", "events",
                                        _ok(array(ref("EventType")))),
    ("GET", "/api/v1/event-types/{key}"): api(
        "One event type: settings and the recorded structure of its params", "events",
        _ok(ref("EventType")), params=[_TYPE_KEY]),
    ("PATCH", "/api/v1/event-types/{key}"): api(
        "Change an event type's settings (only the members sent)", "events",
        _ok(ref("EventType")), params=[_TYPE_KEY], body={"type": "object", "properties": {
            "segmentation": {"type": "boolean"}, "createContacts": {"type": "boolean"},
            "validateParams": {"type": "array", "items": {"type": "object", "properties": {
                "name": STRING, "required": {"type": "boolean"}}}}}}),
    ("GET", "/api/v1/events"): api("List events, newest first", "events", _ok(ref("EventPage")),
                                   params=[query("eventTypeKey", STRING),
                                           query("keyValue", STRING),
                                           query("since", _TIME), query("until", _TIME),
                                           query("pageSize", {"type": "integer", "minimum": 0}),
                                           query("pageToken", STRING)]),
    ("GET", "/api/v1/events/{event_id}"): api("Read one event", "events",
                                              _ok(ref("StoredEvent")),
                                              params=[path_id("event_id", "event")]),
    # templates
    ("POST", "/api/v1/messages/preview"): api("Render a template (View message)", "messages",
                                              _ok(ref("Rendered")), body=ref("Preview")),
    ("POST", "/api/v1/messages"): api("Store a message template", "messages", _ok(ref("Id")),
                                      body=ref("TemplateInput")),
    ("GET", "/api/v1/messages"): api("List message templates", "messages",
                                     _ok(array(ref("Template")))),
    ("GET", "/api/v1/messages/{template_id}"): api("Read a message template", "messages",
                                                   _ok(ref("Template")),
                                                   params=[path_id("template_id", "template")]),
    ("PUT", "/api/v1/messages/{template_id}"): api("Replace a message template", "messages",
                                                   _ok(ref("Template")),
                                                   params=[path_id("template_id", "template")],
                                                   body=ref("TemplateInput")),
    # workflows
    ("POST", "/api/v1/workflows"): api("Create a workflow", "workflows", _ok(ref("IdVersion")),
                                       body=ref("WorkflowDefinition")),
    ("GET", "/api/v1/workflows"): api("List workflows", "workflows", _ok(array(ref("Workflow")))),
    ("POST", "/api/v1/workflows/simulate"): api("Simulate a workflow on events", "workflows",
                                                _ok(ref("SimulationResult")),
                                                body=ref("Simulation")),
    ("GET", "/api/v1/workflows/{workflow_id}"): api("Read a workflow", "workflows",
                                                    _ok(ref("Workflow")), params=[_workflow_id]),
    ("PUT", "/api/v1/workflows/{workflow_id}"): api("Replace a workflow (a new version)",
                                                    "workflows", _ok(ref("IdVersion")),
                                                    params=[_workflow_id],
                                                    body=ref("WorkflowDefinition")),
    ("POST", "/api/v1/workflows/{workflow_id}/activate"): _activate,
    ("POST", "/api/v1/workflows/{workflow_id}/deactivate"): _activate,
    ("GET", "/api/v1/workflows/{workflow_id}/runs"): {**_runs,
                                                      "parameters": [_workflow_id, *_LIST_QUERY,
                                                                     query("status", STRING)]},
    ("GET", "/api/v1/workflow-runs"): _runs,
    ("GET", "/api/v1/workflow-runs/{run_id}"): api("A run and its steps", "workflows",
                                                   _ok(ref("RunSteps")), params=[_run_id]),
    ("GET", "/api/v1/workflow-runs/{run_id}/messages"): {
        **_run_messages, "parameters": [_run_id, *_LIST_QUERY,
                                        query("workflowId", {"type": "integer", "minimum": 0})]},
    ("GET", "/api/v1/workflow-messages"): _run_messages,
    # segments (docs/segments.md)
    ("POST", "/api/v1/segments"): api("Save a segment definition (recounted in the background)",
                                      "segments", _ok(ref("Id")), body=ref("SegmentDefinition")),
    ("GET", "/api/v1/segments"): api("List the account's segments", "segments",
                                     _ok(array(ref("Segment")))),
    ("GET", "/api/v1/segments/{segment_id}"): api(
        "A segment: its definition and build status", "segments", _ok(ref("Segment")),
        params=[_segment_id]),
    ("PUT", "/api/v1/segments/{segment_id}"): api(
        "Replace a segment's definition (a new version, recounted)", "segments",
        _ok(ref("IdVersion")), params=[_segment_id], body=ref("SegmentDefinition")),
    ("DELETE", "/api/v1/segments/{segment_id}"): api(
        "Delete a segment with its members and change log", "segments", _ok(None),
        params=[_segment_id]),
    ("GET", "/api/v1/segments/{segment_id}/contacts"): api(
        "A segment's members in contact id order", "segments",
        _ok(array(ref("SegmentMember")), headers=_TOTAL), params=[_segment_id, *_PAGE_QUERY]),
    ("GET", "/api/v1/segments/{segment_id}/contacts/{contact_id}"): api(
        "One member (404 when the contact is not in the segment)", "segments",
        _ok(ref("SegmentMember")), params=[_segment_id, path_id("contact_id", "contact")]),
    ("GET", "/api/v1/segments/{segment_id}/count"): api(
        "How many members a segment has", "segments", _ok(ref("SegmentCount")),
        params=[_segment_id]),
    ("GET", "/api/v1/groups"): api(
        "eSputnik's groups: static groups (type Static) and segments (type Dynamic)",
        "contacts", _ok(array(ref("Group")))),
    ("GET", "/api/v1/group/{group_id}/contacts"): api(
        "A group's contacts in eSputnik's contact shape (full=true: the whole record)",
        "contacts", _ok(array(ref("StoredContact")), headers=_TOTAL),
        params=[path_id("group_id", "group (static group or segment)"), *_PAGE_QUERY, _FULL]),
    # contacts and fields
    ("GET", "/api/v1/fields"): api("List additional fields", "contacts",
                                   _ok(array(ref("Field")))),
    ("POST", "/api/v1/fields"): api("Define an additional field", "contacts", _ok(ref("Field")),
                                    body=ref("FieldInput")),
    ("GET", "/api/v1/fields/{item_id}"): api("Read a field", "contacts", _ok(ref("Field")),
                                             params=[_field_id]),
    ("PUT", "/api/v1/fields/{item_id}"): api("Change a field", "contacts", _ok(ref("Field")),
                                             params=[_field_id], body=ref("FieldInput")),
    ("DELETE", "/api/v1/fields/{item_id}"): api("Delete a field", "contacts", _ok(None),
                                                params=[_field_id]),
    ("POST", "/api/v1/contact"): api("Create or update a contact", "contacts", _ok(ref("Id")),
                                     body=ref("Contact")),
    ("GET", "/api/v1/contact/{item_id}"): api("Read a contact", "contacts",
                                              _ok(ref("StoredContact")),
                                              params=[_contact_id, _FULL]),
    ("PUT", "/api/v1/contact/{item_id}"): api(
        "Replace a contact", "contacts",
        _ok(STRING, media=_TEXT, description="Contact with id='N' has been updated"),
        params=[_contact_id], body=ref("Contact")),
    ("DELETE", "/api/v1/contact/{item_id}"): api(
        "Delete a contact", "contacts",
        _ok(STRING, media=_TEXT, description="Contact with id='N' has been deleted"),
        params=[_contact_id]),
    ("GET", "/api/v1/contacts"): api("Search contacts", "contacts",
                                     _ok(array(ref("StoredContact")), headers=_TOTAL),
                                     params=[query(name, STRING) for name in (
                                         "email", "sms", "phone", "externalCustomerId",
                                         "contactKey", "firstname", "lastname")]
                                     + [*_PAGE_QUERY, _FULL]),
    ("POST", "/api/v1/contacts"): {**api("Create or update up to 3,000 contacts", "contacts",
                                         _ok(ref("BulkResult")), body=ref("BulkContacts")),
                                   "parameters": [query("results", {"type": "boolean"})]},
    ("GET", "/api/v1/importstatus/{session_id}"): api(
        "A bulk import's session", "contacts", _ok(ref("ImportStatus")),
        params=[{"name": "session_id", "in": "path", "required": True, "schema": STRING,
                 "example": "0" * 32, "description": "asyncSessionId of the bulk's answer"}]),
    # consent
    ("POST", "/api/v1/contact/subscribe"): api("The subscription form", "consent",
                                               _ok(ref("Id")), body=ref("Subscribe")),
    ("POST", "/api/v1/emails/unsubscribed/add"): _unsubscribe,
    ("POST", "/api/v1/emails/unsubscribe/add"): _unsubscribe,
    ("POST", "/api/v1/emails/unsubscribed/delete"): _resubscribe,
    ("POST", "/api/v1/emails/unsubscribe/delete"): _resubscribe,
    ("GET", "/api/v1/emails/unsubscribed"): api("List unsubscribed addresses", "consent",
                                                _ok(array(STRING), headers=_TOTAL),
                                                params=_PAGE_QUERY),
    ("DELETE", "/api/v1/contact"): api(
        "Delete (or erase) a contact by external id", "consent",
        _ok(STRING, media="text/plain", description="Contact with id='N' has been deleted"),
        params=[{**query("externalCustomerId", {"type": "string", "minLength": 1}),
                 "required": True},
                query("erase", {"type": "boolean"})]),
    # orders
    ("POST", "/api/v1/orders"): api("Create or update orders", "orders", _ok(None),
                                    body=ref("Orders")),
    ("GET", "/api/v1/orders"): api("List orders", "orders", _ok(array(ref("Order")),
                                                                headers=_TOTAL),
                                   params=[query("externalCustomerId", STRING),
                                           query("email", STRING),
                                           query("contactId", {"type": "integer", "minimum": 0}),
                                           query("status", STRING), *_PAGE_QUERY]),
    ("GET", "/api/v1/orders/{external_order_id}"): api(
        "Read an order", "orders", _ok(ref("Order")),
        params=[{"name": "external_order_id", "in": "path", "required": True,
                 "schema": STRING, "example": "order-1"}]),
    # sending
    ("POST", "/api/v1/message/{message_id}/smartsend"): api(
        "Send a stored template to recipients", "messages", _ok(ref("SendResults")),
        params=[path_id("message_id", "template")], body=ref("SendBody")),
    ("POST", "/api/v1/message/email"): api("Send an email given whole", "messages",
                                           _ok(ref("SendResults")), body=ref("SendBody")),
    ("GET", "/api/v1/message/status"): api(
        "Outcomes of sends", "messages", _ok(ref("MessageStatuses")),
        params=[{**query("ids", {"type": "string", "minLength": 1},
                         "requestIds, comma-separated"), "required": True}]),
    # account
    ("GET", "/api/v1/account/info"): api("The caller's account", "account",
                                         _ok(ref("AccountInfo"))),
    ("GET", "/api/v1/account/settings"): api("The account's settings (its time zone)",
                                             "account", _ok(ref("AccountSettings"))),
    ("PATCH", "/api/v1/account/settings"): api(
        "Change the account's settings (only the members sent)", "account",
        _ok(ref("AccountSettings")),
        body={"type": "object", "additionalProperties": False,
              "properties": {"timeZone": {"type": "string", "examples": ["Europe/Kyiv"]}}}),
    ("GET", "/api/v1/version"): _version,
    ("GET", "/api/v2/version"): _version,
    # admin
    ("POST", "/api/v1/admin/accounts"): admin("Create an account and its first key",
                                              _ok(ref("NewKey"), "201"), body=ref("NewAccount")),
    ("GET", "/api/v1/admin/accounts/{account_id}/keys"): admin(
        "An account's keys", _ok(array(ref("ApiKey"))), params=[path_id("account_id", "account")]),
    ("POST", "/api/v1/admin/accounts/{account_id}/keys"): admin(
        "Add a key to an account", _ok(ref("NewKey"), "201"),
        params=[path_id("account_id", "account")], body=ref("NewKeyLabel")),
    ("DELETE", "/api/v1/admin/keys/{key_id}"): admin(
        "Revoke a key on every serving process", _ok(ref("Revoked")),
        params=[path_id("key_id", "key")]),
}

_since_until = [query("since", STRING), query("until", STRING), query("eventTypeKey", STRING),
                query("keyValue", STRING), query("next", STRING)]
_LOGIN = page("Sign in with an API key")
_LOGIN["security"] = []
_LOGIN_POST = page("Sign in with an API key", body=True)
_LOGIN_POST["security"] = []
CONSOLE: dict[tuple[str, str], Operation] = {
    ("GET", "/"): page("Overview"),
    ("GET", "/login"): _LOGIN,
    ("POST", "/login"): _LOGIN_POST,
    ("POST", "/logout"): page("Sign out", body=True),
    ("GET", "/event-types"): page("Event types"),
    ("GET", "/event-types/{key}"): page("One event type", params=[_CONSOLE_TYPE_KEY]),
    ("POST", "/event-types/{key}"): page("Save an event type's settings", body=True,
                                         params=[_CONSOLE_TYPE_KEY]),
    ("GET", "/events"): page("Event history", params=_since_until),
    ("GET", "/events/{event_id}"): page("One event", params=[path_id("event_id", "event")]),
    ("GET", "/messages"): page("Message templates"),
    ("POST", "/messages"): page("Save a template", body=True),
    ("GET", "/messages/new"): page("A new template"),
    ("POST", "/messages/preview"): page("Preview a template", body=True),
    ("POST", "/messages/{template_id}"): page("Save a template in place", body=True,
                                              params=[path_id("template_id", "template")]),
    ("GET", "/messages/{template_id}"): page("One template",
                                             params=[path_id("template_id", "template")]),
    ("GET", "/workflows"): page("Workflows"),
    ("POST", "/workflows"): page("Create a workflow", body=True),
    ("GET", "/workflows/new"): page("A new workflow"),
    ("GET", "/workflows/{workflow_id}"): page("One workflow", params=[_workflow_id]),
    ("POST", "/workflows/{workflow_id}/active"): page("Activate or deactivate", body=True,
                                                      params=[_workflow_id]),
    ("POST", "/workflows/{workflow_id}/definition"): page("Save a definition", body=True,
                                                          params=[_workflow_id]),
    ("GET", "/workflows/{workflow_id}/simulate"): page("The simulator", params=[_workflow_id]),
    ("POST", "/workflows/{workflow_id}/simulate"): page("Simulate", body=True,
                                                        params=[_workflow_id]),
    ("GET", "/runs/{run_id}"): page("One run", params=[_run_id]),
    ("GET", "/contacts"): page("Contacts", params=[query("q", STRING)]),
    ("POST", "/contacts/import"): page("Import a slice of a CSV", body=True),
    ("GET", "/contacts/{contact_id}"): page("One contact",
                                            params=[path_id("contact_id", "contact")]),
    ("GET", "/segments"): page("Segments"),
    ("POST", "/segments"): page("Create a segment", body=True),
    ("GET", "/segments/new"): page("A new segment"),
    ("GET", "/segments/{segment_id}"): page("One segment: status, conditions, members",
                                            params=[_segment_id, query("from", {
                                                "type": "integer", "minimum": 0},
                                                "first member shown, from 0")]),
    ("POST", "/segments/{segment_id}"): page("Save a segment's definition", body=True,
                                             params=[_segment_id]),
    ("POST", "/segments/{segment_id}/delete"): page("Delete a segment", body=True,
                                                    params=[_segment_id]),
    ("GET", "/sent"): page("Sent messages"),
    ("GET", "/sent/{message_id}"): page("One sent letter",
                                        params=[path_id("message_id", "message")]),
    ("GET", "/console/static/{name}"): {
        "summary": "The console's scripts, styles and icon", "tags": ["console"],
        "security": [],
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": STRING,
                        "example": "console.css"}],
        "responses": {"200": {"description": "the file", "content": {
            "text/css": {"schema": STRING}, "text/javascript": {"schema": STRING},
            "application/javascript": {"schema": STRING},
            "image/svg+xml": {"schema": STRING}}},
            "404": {"description": "no such file", "content": {"text/plain": {"schema": STRING}}}}},
}
