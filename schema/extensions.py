"""Cross-cutting steps of every operation: naming it for the audit, then writing the audit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension


def _operation(execution_context: Any) -> str | None:
    """The operation's name, or its root fields when it is anonymous: what the audit shows."""
    if execution_context.operation_name:
        return str(execution_context.operation_name)
    document = execution_context.graphql_document
    for definition in getattr(document, "definitions", ()):
        if isinstance(definition, OperationDefinitionNode):
            names = [
                s.name.value for s in definition.selection_set.selections if hasattr(s, "name")
            ]
            return ",".join(names)[:200] or None
    return None


class AuditFlush(SchemaExtension):
    """Writes the request's audit trail before the answer leaves; no audit, no answer."""

    def on_execute(self) -> Iterator[None]:
        audit = getattr(self.execution_context.context, "audit", None)
        if audit is not None:
            audit.operation = _operation(self.execution_context)
        yield

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        audit = getattr(self.execution_context.context, "audit", None)
        if audit is None:
            return
        try:
            await audit.flush()
        except Exception as exc:
            result = self.execution_context.result
            if result is not None:
                result.data = None
                result.errors = [GraphQLError(str(exc), original_error=exc)]
