"""The HTTP-JSON gateway: eSputnik's REST paths mapped onto the gRPC services."""
