"""Domain errors with the client-facing codes of the design.

Services raise these; the GraphQL layer turns them into ``extensions.code``. Anything else that
escapes a resolver is unexpected and reaches clients only as ``INTERNAL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ShmsError(Exception):
    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class BadUserInput(ShmsError):
    """Input failed validation; ``fields`` maps each offending input path to its reason."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message, fields=dict(fields or {}))
        self.fields = dict(fields or {})


class NotFound(ShmsError):
    code = "NOT_FOUND"

    def __init__(self, entity: str, id: str) -> None:
        super().__init__(f"{entity} {id} does not exist", entity=entity, id=id)


class Conflict(ShmsError):
    code = "CONFLICT"


class Forbidden(ShmsError):
    code = "FORBIDDEN"


class Unauthenticated(ShmsError):
    code = "UNAUTHENTICATED"


class RateLimited(ShmsError):
    code = "RATE_LIMITED"


class BadRequest(ShmsError):
    """The HTTP request itself is unusable (its body is not UTF-8 JSON holding an object, or
    not a shape GraphQL over HTTP accepts): answered with HTTP 400 before any GraphQL runs."""

    code = "BAD_REQUEST"
