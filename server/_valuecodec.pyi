"""Type stub of the C extension built from server/native/valuecodec.c."""

from typing import Any, TypeAlias

_Bytes: TypeAlias = bytes | bytearray | memoryview

class TooDeep(Exception):
    """A struct or list was entered with the depth budget spent."""

def value_to_py(data: _Bytes, budget: int, missing: object, /) -> Any:
    """The JSON value of a serialized google.protobuf.Value (``missing`` when unset)."""

def request_params_to_py(data: _Bytes, budget: int, missing: object, /) -> list[tuple[str, Any]]:
    """The (name, value) params of a serialized eventflow.v1.GenerateEventRequest."""

def py_to_value_bytes(obj: object, /) -> bytes:
    """The serialized google.protobuf.Value of a JSON value."""
