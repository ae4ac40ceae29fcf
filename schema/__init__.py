"""Strawberry types and inputs, one module per domain; ``schema.schema`` is the built schema.

The schema is assembled in ``schema.root`` and imported lazily here, so a resolver module can
import its types from ``schema.<domain>`` without first pulling in every other resolver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schema.root import ShmsSchema

    schema: ShmsSchema


def __getattr__(name: str) -> Any:
    if name == "schema":
        from schema.root import schema

        return schema
    raise AttributeError(name)
