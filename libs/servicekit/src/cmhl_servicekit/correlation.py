"""Correlation ids as the system keeps them: always a UUID.

Correlation ids are copied onto topics kept for years, so a caller's free text (an agency's
record number, a name typed into a header) never travels as given: a UUID is kept as it is,
anything else becomes a UUID derived from it (a retry of the same request keeps the same id),
and nothing at all gets a new one."""

import uuid

NAMESPACE = uuid.UUID("0b6c1f0e-5a3d-5c47-9f6e-3d2a9c8b7e10")


def correlation_id_from(given: str | None) -> str:
    if not given:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(given))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, given))
