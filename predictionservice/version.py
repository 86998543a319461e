"""The service's version, in this one place: pyproject.toml reads it (``dynamic``), and ``/health``,
``/v2``, /openapi.json and the command lines' ``--version`` show it. CHANGELOG.md says what each
version brought."""

__version__ = "0.1.0"
