"""The one codec layer for events, below both the gRPC servicers and the HTTP gateway.

A body in (eSputnik JSON, ``jsonbody``; a protobuf request, ``proto``) becomes an
``EventInput`` whose shape and nesting depth (``depth``) are checked here, once; an
``EventInput`` goes out as ``GenerateEventRequest`` wire bytes (``wire``), the one
encoder. ``values`` converts ``google.protobuf.Value`` with the C codec
``server._valuecodec`` or its pure-Python specification (``wirejson`` on wire bytes),
chosen once per process from ``Settings.pure_python`` (``values.configure``). Object
keys keep the caller's order only on the wire, so requests are read from the bytes
received (``received``) and stored events answered as bytes (``wire.stored_event``).
"""
