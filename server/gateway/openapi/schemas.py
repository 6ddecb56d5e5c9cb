"""The JSON Schemas of the gateway's bodies (OpenAPI 3.1 components), written from what the
handlers read and answer (``server/gateway/*.py``); ``operations`` refers to them by name."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
ANY: Schema = {}
TIME_OR_NULL: Schema = {"type": ["string", "null"], "description": "ISO 8601, UTC"}
INT_OR_NULL: Schema = {"type": ["integer", "null"]}
STRING_OR_NULL: Schema = {"type": ["string", "null"]}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict[str, Schema] | None = None, optional: dict[str, Schema] | None = None,
        *, description: str | None = None, closed: bool = False) -> Schema:
    """An object schema; members beyond those named are allowed unless ``closed``."""
    out: Schema = {"type": "object",
                   "properties": {**(required or {}), **(optional or {})}}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    if description:
        out["description"] = description
    return out


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


_EVENT_STATUSES = ["ACCEPTED", "INVALID", "TOO_LARGE", "RATE_LIMITED",
                   "OCCURRED_TIME_IN_FUTURE", "OCCURRED_TIME_TOO_DEPTH",
                   "OCCURRED_DATE_IS_REQUIRED", "INCORRECT_OCCURRED_DATE_FORMAT",
                   "EVENT_SEGMENTATION_DISABLED"]
_VIOLATION = obj({"field": STRING_OR_NULL, "message": STRING})


def _event(value: Schema, *, past: bool = False) -> Schema:
    occurred = {"occurred": {"type": "string", "description":
                             "YYYY-MM-DD, YYYY-MM-DDTHH:mm or ISO 8601 with zone",
                             "examples": ["2026-11-27T10:00"]}}
    return obj({"eventTypeKey": {"type": "string", "minLength": 1, "maxLength": 100,
                                 "examples": ["abandoned_cart"]},
                **(occurred if past else {})},
               {"keyValue": {"type": "string", "maxLength": 255, "examples": ["site@com.net"]},
                "params": array(obj({"name": {"type": "string", "minLength": 1}},
                                    {"value": value}))},
               description="eSputnik's Generate event body (docs/behaviour.md)")


_RUN = obj({"id": INTEGER, "workflowId": INTEGER, "version": INTEGER, "eventId": INTEGER,
            "contactId": INT_OR_NULL, "keyValue": STRING, "status": STRING,
            "currentBlock": STRING_OR_NULL, "error": STRING_OR_NULL,
            "startedAt": TIME_OR_NULL, "updatedAt": TIME_OR_NULL,
            "finishedAt": TIME_OR_NULL, "dueAt": TIME_OR_NULL})
_SEND_RESULTS = obj({"results": array(obj({
    "id": INTEGER, "locator": STRING, "status": STRING, "requestId": STRING,
    "message": STRING_OR_NULL}))})

COMPONENTS: dict[str, Schema] = {
    "Error": obj({"error": STRING}, {"violations": array(_VIOLATION)},
                 description="Every refusal (docs/errors.md); some carry more members "
                             "(a template error's line, column and kind)"),
    "Event": _event(ANY),
    "EventV1": _event(STRING),
    "PastEvent": _event(ANY, past=True),
    "PastEvents": {"oneOf": [obj({"events": array(ref("PastEvent"), maxItems=500)}),
                             array(ref("PastEvent"), maxItems=500)]},
    "PastEventsResult": obj({
        "results": array(obj({"status": {"enum": _EVENT_STATUSES}},
                             {"eventId": INTEGER, "violations": array(_VIOLATION)})),
        "successCount": INTEGER, "errorCount": INTEGER}),
    "EventType": obj({"id": INTEGER, "key": STRING, "createdAt": TIME_OR_NULL,
                      "eventCount": INTEGER}),
    "StoredEvent": obj({"id": INTEGER, "receivedAt": TIME_OR_NULL, "keyValue": STRING},
                       {"occurred": STRING, "contactId": INTEGER, "eventTypeKey": STRING,
                        "params": ANY,
                        "identityNotes": array(obj({"status": STRING, "field": STRING,
                                                    "message": STRING}))},
                       description="the body as received plus what the server added"),
    "EventPage": obj({"events": array(ref("StoredEvent")), "nextPageToken": STRING_OR_NULL}),
    "Id": obj({"id": INTEGER}),
    "IdVersion": obj({"id": INTEGER, "version": INTEGER}),
    "TemplateInput": obj(optional={"name": STRING, "subject": STRING, "html": STRING,
                                   "text": STRING}),
    "Template": obj({"id": INTEGER, "name": STRING, "subject": STRING, "html": STRING,
                     "text": STRING, "createdAt": STRING}),
    "Preview": obj({"template": {"type": "string", "minLength": 1}},
                   {"jsonParam": STRING, "event": ANY, "context": ANY},
                   description="give event or context, not both (docs/templates.md)"),
    "Rendered": obj({"rendered": STRING}),
    "WorkflowDefinition": obj(optional={
        "name": STRING, "active": BOOLEAN, "trigger": obj(optional={
            "eventTypeKey": STRING,
            "segment": obj(optional={"id": INTEGER, "change": {"enum": ["entered", "left"]}},
                           description="start on segment membership changes")}),
        "start": STRING, "blocks": array(obj({"id": STRING, "type": STRING}))},
        description="docs/workflows.md"),
    "Workflow": obj({"id": INTEGER, "version": INTEGER, "active": BOOLEAN,
                     "createdAt": TIME_OR_NULL, "updatedAt": TIME_OR_NULL},
                    {"name": STRING, "trigger": ANY, "start": STRING, "blocks": ANY}),
    "Simulation": obj(optional={"definition": ref("WorkflowDefinition"),
                                "events": array(obj()), "contacts": array(obj())}),
    "SimulationResult": obj(description="the simulator's trace (docs/workflows.md)"),
    "Run": _RUN,
    "Runs": obj({"runs": array(_RUN)}),
    "RunSteps": {"allOf": [_RUN, obj({"steps": array(obj({
        "seq": INTEGER, "blockId": STRING, "type": STRING, "status": STRING,
        "next": STRING_OR_NULL, "detail": ANY, "worker": STRING,
        "finishedAt": TIME_OR_NULL}))})]},
    "WorkflowMessages": obj({"messages": array(obj({
        "id": INTEGER, "runId": INTEGER, "workflowId": INTEGER, "seq": INTEGER,
        "blockId": STRING, "contactId": INT_OR_NULL, "channel": STRING, "recipient": STRING,
        "subject": STRING, "messageId": STRING, "status": STRING, "reason": STRING_OR_NULL,
        "attempts": INTEGER, "createdAt": TIME_OR_NULL, "sentAt": TIME_OR_NULL}))}),
    "SegmentDefinition": obj({"name": {"type": "string", "minLength": 1, "maxLength": 200},
                              "conditions": obj(description='one of "all", "any", "not", '
                                                '"event", "contact"')},
                             {"timeZone": {"type": "string", "examples": ["Europe/Kyiv"]}},
                             description="docs/segments.md, Definitions"),
    "Segment": obj({"id": INTEGER, "name": STRING, "conditions": obj(), "timeZone": STRING,
                    "version": INTEGER, "status": {"enum": ["building", "ready"]},
                    "processed": INTEGER, "total": INTEGER, "createdAt": TIME_OR_NULL,
                    "updatedAt": TIME_OR_NULL, "builtAt": TIME_OR_NULL}),
    "SegmentMember": obj({"id": INTEGER, "email": STRING_OR_NULL, "enteredAt": TIME_OR_NULL}),
    "SegmentCount": obj({"count": INTEGER, "status": {"enum": ["building", "ready"]}}),
    "Group": obj({"id": INTEGER, "name": STRING, "type": STRING}),
    "FieldInput": obj(optional={"name": STRING, "type": STRING, "allowedValues": array(ANY),
                                "min": ANY, "max": ANY, "required": BOOLEAN},
                      description="docs/contacts.md, additional fields"),
    "Field": obj({"id": INTEGER, "name": STRING, "type": STRING, "allowedValues": array(ANY),
                  "min": ANY, "max": ANY, "required": BOOLEAN}),
    "Contact": obj(optional={"firstName": STRING, "lastName": STRING,
                             "channels": array(obj({"type": STRING, "value": STRING})),
                             "fields": array(obj({"id": INTEGER}, {"value": ANY})),
                             "externalCustomerId": STRING},
                   description="eSputnik's contact (docs/contacts.md)"),
    "StoredContact": obj({"id": INTEGER}, {
        "firstName": STRING_OR_NULL, "lastName": STRING_OR_NULL, "addressBookId": ANY,
        "groups": array(obj({"id": ANY, "name": STRING, "type": ANY})),
        "externalCustomerId": STRING_OR_NULL, "contactKey": STRING_OR_NULL,
        "languageCode": STRING_OR_NULL, "timeZone": STRING_OR_NULL, "status": STRING,
        "channels": array(obj({"type": STRING, "value": STRING})), "address": ANY,
        "fields": array(obj({"id": INTEGER}, {"value": ANY})), "confirmed": ANY,
        "createdAt": TIME_OR_NULL, "updatedAt": TIME_OR_NULL},
        description="a stored contact as eSputnik answers it; full=true the whole record "
                    "(docs/contacts.md)"),
    "BulkContacts": {"oneOf": [obj({"contacts": array(ref("Contact"), maxItems=3000)},
                                   {"dedupeOn": STRING, "fieldId": {"type": "null"},
                                    "groupNames": array(STRING),
                                    "groupNamesExclude": array(STRING),
                                    "contactFields": array(STRING),
                                    "customFieldsIDs": array(INTEGER),
                                    "restoreDeleted": BOOLEAN,
                                    "eventKeyForNewContacts": STRING},
                                   description="eSputnik's ContactsBulkUpdate "
                                               "(docs/compatibility.md)"),
                               array(ref("Contact"), maxItems=3000)]},
    "BulkResult": obj({"asyncSessionId": STRING}, {
        "failedContacts": array(ref("BulkEntry")), "results": array(ref("BulkEntry")),
        "successCount": INTEGER, "errorCount": INTEGER},
        description="eSputnik's session (results=true: every contact's result too)"),
    "BulkEntry": obj({"index": INTEGER, "status": STRING, "id": INT_OR_NULL,
                      "errors": array(STRING)}),
    "ImportStatus": obj({"asyncSessionId": STRING, "status": STRING, "createdAt": STRING,
                         "successCount": INTEGER, "errorCount": INTEGER,
                         "failedContacts": array(ref("BulkEntry")),
                         "results": array(ref("BulkEntry"))}, {"error": ANY}),
    "Subscribe": obj({"contact": ref("Contact")},
                     {"groups": ANY, "formType": STRING, "dedupeOn": STRING, "fields": ANY,
                      "subscriptions": array(ANY, maxItems=0)}, closed=True),
    "Emails": obj({"emails": array({"type": "string"})}, closed=True),
    "Orders": obj({"orders": array(obj({"externalOrderId": STRING}))}, closed=True),
    "Order": obj({"externalOrderId": STRING, "status": STRING, "contactId": INT_OR_NULL,
                  "createdAt": STRING, "updatedAt": STRING, "order": obj()}),
    "SendBody": obj(description="eSputnik's smartsend or email body"),
    "SendResults": _SEND_RESULTS,
    "MessageStatuses": obj({"results": array(obj({
        "requestId": STRING, "locator": STRING, "status": STRING, "delivered": BOOLEAN,
        "failed": BOOLEAN, "message": STRING_OR_NULL, "messageId": STRING}))}),
    "AccountInfo": obj({"userEmail": STRING, "organisationName": STRING, "orgId": INTEGER}),
    "AccountSettings": obj({"timeZone": STRING}),
    "Version": obj({"version": STRING, "protocolVersion": STRING}),
    "NewAccount": obj(optional={"name": STRING, "email": STRING}),
    "NewKeyLabel": obj(optional={"label": STRING}),
    "NewKey": obj({"id": INTEGER, "apiKey": STRING}),
    "ApiKey": obj({"id": INTEGER, "accountId": INTEGER, "label": STRING, "createdAt": STRING}),
    "Revoked": obj({"accountId": INTEGER, "confirmed": INTEGER, "subscribed": INTEGER}),
    "Health": obj({"status": STRING}, {"grpc": STRING}),
    "ConsoleForm": obj(description="the page's own form fields (or JSON from its scripts)"),
}
