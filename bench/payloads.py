"""The events the load generator sends: a small cart event and a ~1 KB one.

Built once per process and reused, so the generator spends its time sending.
"""

from __future__ import annotations

from typing import Any

import orjson

from eventflow.v1 import events_pb2
from server.codec.jsonbody import event_from_json
from server.codec.proto import input_to_request


def small_body(i: int = 0) -> dict[str, Any]:
    """About 200 bytes: the seed's password-recovery shape."""
    return {"eventTypeKey": "bench_small", "keyValue": f"user{i}@example.com",
            "params": [{"name": "EmailAddress", "value": f"user{i}@example.com"},
                       {"name": "password", "value": "12345678"}]}


def kb_body(i: int = 0) -> dict[str, Any]:
    """About 1 KB of JSON: an abandoned cart with four items."""
    items = [{"name": f"Item {n} Парфумована вода", "price": str(341 + n), "brand": "Le Petit",
              "url": f"https://shop.example.com/p/{n}", "imageUrl": f"https://cdn.example.com/{n}.jpg",
              "qty": n + 1, "inStock": True, "tags": ["gift", "sale"]}
             for n in range(4)]
    return {"eventTypeKey": "bench_cart", "keyValue": f"user{i}@example.com",
            "params": [{"name": "email", "value": f"user{i}@example.com"},
                       {"name": "total", "value": 1234.5},
                       {"name": "items", "value": {"array": items}}]}


def request(body: dict[str, Any]) -> events_pb2.GenerateEventRequest:
    return input_to_request(event_from_json(body))


def body_bytes(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)
