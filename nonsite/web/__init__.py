"""The HTTP API (``/api/v1``, OpenAPI at ``/api/openapi.json``) and the dashboard."""
