"""The gateway's OpenAPI 3.1 document, served at ``/openapi.json``: the paths and methods
come from the app's route table (``build.route_operations``), what each takes and answers
from ``operations`` and ``schemas``."""

from server.gateway.openapi.build import document, openapi_path, release, route_operations

__all__ = ["document", "openapi_path", "release", "route_operations"]
