"""Registering a service whose object values keep the caller's key order.

A parsed protobuf message keeps no order of a Struct's keys (``codec.wirejson``), so the
methods that store what a caller sent read the request's bytes beside the message
(``received``: the servicer method gets a ``codec.received.Received``), and the methods
that answer stored objects answer bytes they wrote themselves (``answers_bytes``). The
handlers are otherwise the generated ones, made from the service's descriptor. A method
given a ``codec.received.Bound`` refuses a longer request before parsing it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from server.codec.received import Bound, bounded, reader

__all__ = ["add_service"]

_KINDS: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _serialized(reply: bytes) -> bytes:
    return reply


def add_service(servicer: Any, server: grpc.aio.Server, service: ServiceDescriptor, *,
                received: Collection[str] = (), answers_bytes: Collection[str] = (),
                bounds: Mapping[str, Bound] | None = None) -> None:
    """Registers ``servicer``'s methods of ``service`` on ``server`` as the generated
    ``add_<Service>Servicer_to_server`` does, except the methods named in ``received``
    (their requests come as ``Received``), ``answers_bytes`` (they return serialized
    replies) and ``bounds`` (a request, or a stream's message, longer than its bound is
    refused unparsed)."""
    bounds = bounds or {}
    unknown = ((set(received) | set(answers_bytes) | set(bounds))
               - {m.name for m in service.methods})
    if unknown:
        raise ValueError(f"{service.full_name} has no method {sorted(unknown)}")
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        parse: Callable[[bytes], Any] = message_factory.GetMessageClass(
            method.input_type).FromString
        if method.name in received:
            parse = reader(parse)
        if method.name in bounds:
            parse = bounded(parse, bounds[method.name])
        reply = message_factory.GetMessageClass(method.output_type)
        handlers[method.name] = _KINDS[method.client_streaming, method.server_streaming](
            getattr(servicer, method.name),
            request_deserializer=parse,
            response_serializer=(_serialized if method.name in answers_bytes
                                 else reply.SerializeToString))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
