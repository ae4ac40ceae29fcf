"""Subscription event types, and the executor that runs each event with its own context.

A WebSocket's context lives as long as the connection, and graphql-core executes every event of
a subscription with the context the operation started with. Its loaders would then serve rows
cached by earlier events, and its audit trail would only be written when the subscription ends.
So every event carries a fresh context (``Context.for_event``) and ``EventExecutor`` executes
the event's selection with it: each resolver below the event (guarded fields included) decides
access exactly as it would for a query, the event's audit trail is written before the event
leaves ("no audit, no answer"). ``schema.errors.ErrorCodes`` codes each event's errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from graphql import ExecutionResult, GraphQLError
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.context import Context

if TYPE_CHECKING:
    from schema.equipment import MedicalEquipment
    from schema.scheduling import Appointment


@strawberry.type(description="A device was registered, changed status or moved.")
class EquipmentStatusEvent:
    change: str = strawberry.field(
        description="What happened: `created`, `status_changed`, `allocated`, ..."
    )
    equipment_id: strawberry.ID
    at: datetime = strawberry.field(description="When the write happened.")
    equipment: Annotated[MedicalEquipment, strawberry.lazy("schema.equipment")] | None = (
        strawberry.field(description="The device as it is now, read for this event.")
    )
    context: strawberry.Private[Context]


@strawberry.type(description="An appointment was booked, moved, cancelled or changed.")
class AppointmentEvent:
    change: str = strawberry.field(
        description="What happened: `created`, `rescheduled`, `cancelled`, `status_changed`, ..."
    )
    appointment_id: strawberry.ID
    at: datetime = strawberry.field(description="When the write happened.")
    appointment: Annotated[Appointment, strawberry.lazy("schema.scheduling")] | None = (
        strawberry.field(description="The appointment as it is now, read for this event.")
    )
    context: strawberry.Private[Context]


def _event_context(payload: Any) -> Context | None:
    context = getattr(payload, "context", None)
    return context if isinstance(context, Context) else None


class EventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Executes a subscription event with the context the event carries (see the module)."""

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        context = _event_context(payload)
        if context is not None:
            executor.context_value = context
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        context = _event_context(self.root_value)
        if context is None:  # queries, mutations, the subscription's own set-up
            return super().execute_operation(serially)
        # An event context is shared by every subscriber who views the event alike (see
        # resolvers.subscriptions); those asking the same operation with the same variables
        # get the one execution, its audit written once.
        source = self.operation.loc.source.body if self.operation.loc is not None else None
        key = (source, self.operation.name.value if self.operation.name else None,
               repr(sorted(self.variable_values.coerced.items())))  # fmt: skip
        shared = context.event_results.get(key)
        if shared is None or source is None:
            shared = asyncio.ensure_future(
                _finish_event(super().execute_operation(serially), context)
            )
            context.event_results[key] = shared
        return _shared(shared)


async def _shared(execution: asyncio.Future[ExecutionResult]) -> ExecutionResult:
    """One subscriber's wait for the shared execution; its cancellation leaves it running."""
    if execution.done():
        return execution.result()
    return await asyncio.shield(execution)


async def _finish_event(result: Any, context: Context) -> ExecutionResult:
    done: ExecutionResult = await result if isinstance(result, Awaitable) else result
    try:
        await context.audit.flush()
    except Exception as exc:  # an event that cannot be audited is not sent
        done = ExecutionResult(None, [GraphQLError(str(exc), original_error=exc)])
    return done
