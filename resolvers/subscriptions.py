"""Live updates over WebSocket: device changes and appointment changes, as they happen.

At subscribe time the filter itself is judged (``_refuse_unfollowable``): a filter under which no
row could ever be shown to the caller (a patient another patient's, a clinician a patient they
have no relation to) is refused with ``FORBIDDEN``, and one naming a record that does not exist
with ``NOT_FOUND``, as the stream's first error: silence would look like a quiet day.

For every event: the event's references decide cheaply whether the subscriber asked for it;
then a fresh per-event context (``Context.for_event``) loads the row and applies the same row
policy as a query. A row the subscriber may not see is skipped (recorded in the audit when it is
patient data) and the subscription goes on. The fields of the row are resolved on that same
fresh context by ``schema.subscriptions.EventExecutor``, so guarded fields follow the field
policy exactly as in a query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Iterable
from typing import Any

import strawberry
from bson import ObjectId

import metrics
from auth.policy import REGISTRY, ROW, Access, Rel, best
from auth.policy import EntityKind as K
from cache import runtime
from errors import Forbidden, NotFound, ShmsError, Unauthenticated
from events.types import DomainEvent
from models.audit import AuditAction
from models.equipment import MedicalEquipment as EquipmentDocument
from models.scheduling import Appointment as AppointmentDocument
from schema.common import oid, view
from schema.context import Context, Info
from schema.enforce import reads
from schema.equipment import MedicalEquipment
from schema.scheduling import Appointment
from schema.subscriptions import AppointmentEvent, EquipmentStatusEvent

log = logging.getLogger(__name__)

EQUIPMENT = str(EquipmentDocument.Settings.name)
APPOINTMENTS = str(AppointmentDocument.Settings.name)

Visible = tuple[DomainEvent, Any, Context]
"""An event, its row as the subscriber may see it, and the event's own context."""


def _ref(value: strawberry.ID | None, field: str) -> str | None:
    """A filter argument checked like any id argument, as the string events carry."""
    return None if value is None else str(oid(value, field))


Relations = frozenset[Rel]
EVERY_RELATION: Relations = frozenset(Rel)


class _Filter:
    """What one subscription's filter allows: the relations a row under it could have with the
    caller (each filter narrows them), and the named records that do not exist."""

    def __init__(self, info: Info) -> None:
        # Judged on a fresh context, like an event: the connection's own may hold relations
        # and break-the-glass grants from before this subscription.
        self.access = info.context.for_event().access
        self.audit = info.context.audit  # written when this operation ends, with its name
        self.principal = self.access.principal
        self.relations = EVERY_RELATION
        self.missing: list[tuple[str, str]] = []

    def narrow(self, relations: Iterable[Rel]) -> None:
        self.relations = self.relations & frozenset(relations)

    async def load(self, loader: str, kind: str, id: str) -> Any:
        row = await getattr(self.access.loaders, loader).load(ObjectId(id))
        if row is None:
            self.missing.append((kind, id))
        return row

    async def patient(self, id: str) -> None:
        """Rows about one patient: the caller's relations to that patient, as when booking."""
        row = await self.load("patient_by_id", "Patient", id)
        self.narrow(await self.access.relations(K.PATIENT, row) if row is not None else {Rel.ANY})

    async def doctor(self, id: str) -> None:
        """Rows of one doctor: the doctor's own, their department's, or a patient's own."""
        row = await self.load("doctor_by_id", "Doctor", id)
        rels = {Rel.ANY, *self._own(), *self._department(getattr(row, "department_id", None))}
        if row is not None and row.id == self.principal.staff_id:
            rels.add(Rel.CARE)  # the caller's own diary; another doctor's is never followed by CARE
        self.narrow(rels)

    async def department(self, id: str) -> None:
        """Rows of one department: the caller's own department, or a patient's own rows."""
        await self.load("department_by_id", "Department", id)
        self.narrow({Rel.ANY, *self._own(), *self._department(ObjectId(id))})

    async def device(self, id: str) -> None:
        row = await self.load("equipment_by_id", "MedicalEquipment", id)
        rels = await self.access.relations(K.EQUIPMENT, row) if row is not None else {Rel.ANY}
        self.narrow(rels)

    def _own(self) -> set[Rel]:
        """A patient relates to nothing but their own rows, whatever the filter names."""
        return {Rel.SELF} if self.principal.patient_id is not None else set()

    def _department(self, department: ObjectId | None) -> set[Rel]:
        p = self.principal
        mine = p.patient_id is None and p.department_id is not None
        return {Rel.DEPARTMENT} if mine and department == p.department_id else set()


async def _refuse_unfollowable(kind: str, check: _Filter, patient: str | None = None) -> None:
    """``FORBIDDEN`` (audited) when no row under the filter could ever be visible to the
    caller, else ``NOT_FOUND`` when it names a record that does not exist."""
    if best(REGISTRY[kind].read[ROW], check.principal.roles, check.relations) == Access.NONE:
        about = ObjectId(patient) if patient is not None else None
        check.audit.denied(kind, None, about, AuditAction.READ, "no relationship to the filter")
        raise Forbidden(
            f"Not allowed to follow these {kind} changes: none under this filter could be "
            "shown to you"
        )
    for entity, id in check.missing:
        raise NotFound(entity, id)


@contextlib.asynccontextmanager
async def live(
    info: Info, field: str, entities: Collection[str]
) -> AsyncIterator[AsyncIterator[DomainEvent]]:
    """The bus's events of ``entities`` for one subscription, from the moment this is entered
    (so a snapshot read inside follows no event it could miss), with what every subscription
    owes: it lives no longer than its token, is counted while open, and a subscriber too far
    behind is disconnected (``_drop_slow``).

    A timer ends it at the token's ``exp`` even when no event comes, and every event checks
    again (a late timer changes nothing); it then ends with UNAUTHENTICATED (``token_expired``).
    """
    bus = runtime.current().bus
    if bus is None:
        raise ShmsError("Live updates are not available: this process has no event bus")
    stream = bus.subscribe(entities)
    principal = info.context.principal
    expires_at = principal.expires_at if principal is not None else None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        end = getattr(stream, "end", None)  # ends the bus subscription: the loop stops
        if end is not None:
            end()

    async def events() -> AsyncIterator[DomainEvent]:
        async for event in stream:
            if expires_at is not None and time.time() >= expires_at:
                expire()
                return
            yield event

    timer = (
        asyncio.get_running_loop().call_later(max(0.0, expires_at - time.time()), expire)
        if expires_at is not None
        else None
    )
    metrics.SUBSCRIPTIONS_OPEN.labels(field).inc()
    try:
        yield events()
        if getattr(stream, "overflowed", False):
            await _drop_slow(info, field)
        if expired:
            raise Unauthenticated(
                "The token of this subscription expired; subscribe again with a fresh one",
                reason="token_expired",
            )
    finally:
        if timer is not None:
            timer.cancel()
        metrics.SUBSCRIPTIONS_OPEN.labels(field).dec()
        close = getattr(stream, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


async def _visible(
    info: Info,
    field: str,
    kind: K,
    entity: str,
    loader: str,
    child: str,
    wanted: Callable[[DomainEvent], bool],
    keep: Callable[[DomainEvent, Any], bool] = lambda event, row: True,
) -> AsyncGenerator[Visible, None]:
    """The events of ``entity`` that pass ``wanted`` (references) and ``keep`` (the row), with
    their row loaded and checked on a fresh context; ends when the bus closes."""
    await info.context.access.scope(kind)  # no row grant at all: FORBIDDEN now, not silence
    operation = info.operation.name.value if info.operation.name else field
    async with live(info, field, [entity]) as events:
        async for event in events:
            if not wanted(event):
                continue
            judged = await _judged(event, info, operation, kind, loader, field)
            if judged is None:
                continue
            row, context = judged
            if not keep(event, row):
                continue
            yield event, row, context


def _viewer(context: Context, operation: str) -> tuple[Any, ...]:
    """Who views an event, as far as the answer and its audit can tell subscribers apart."""
    p = context.principal
    if p is None:
        return (None, operation)
    return (
        p.subject,
        tuple(sorted(p.roles)),
        p.staff_id,
        p.department_id,
        p.patient_id,
        p.client_id,
        context.client_address,
        operation,
    )


async def _judged(
    event: DomainEvent, info: Info, operation: str, kind: K, loader: str, field: str
) -> tuple[Any, Context] | None:
    """The event's row and the context to show it with, or ``None`` when withheld: worked out
    once per viewer (``_viewer``) for each event, whatever the number of their subscriptions.
    The event object carries the answers, so they go when the last subscriber has it."""
    views: dict[Any, asyncio.Future[tuple[Any, Context] | None]]
    views = event.__dict__.setdefault("_shms_views", {})
    key = (_viewer(info.context, operation), kind, loader, field)
    judged = views.get(key)
    if judged is None:
        judged = asyncio.ensure_future(_judge(event, info, operation, kind, loader, field))
        views[key] = judged
    if judged.done():  # the usual case for all but the viewer's first subscription
        return judged.result()
    return await asyncio.shield(judged)


async def _judge(
    event: DomainEvent, info: Info, operation: str, kind: K, loader: str, field: str
) -> tuple[Any, Context] | None:
    context = info.context.for_event(operation)
    row = await getattr(context.loaders, loader).load(ObjectId(event.id))
    if row is None:
        return None  # gone meanwhile: nobody can be shown a row that is not there
    if not await context.access.can_see(kind, row):
        # Withheld, and recorded as such; the row's fields (and the audit of what is read)
        # are resolved through schema.enforce like any other read.
        context.access.audit_denied(kind, row)
        metrics.EVENTS_DENIED.labels(field).inc()
        await _flush(context)
        return None
    return row, context


WS_TOO_SLOW = 4429
"""The close code of a WebSocket whose subscriber fell ``SHMS_EVENT_QUEUE_SIZE`` events behind."""


async def _drop_slow(info: Info, field: str) -> None:
    """A subscriber that cannot keep up is let go, so it holds no memory and no one waits on
    it: its connection closes with ``WS_TOO_SLOW`` (the client re-subscribes and reloads)."""
    metrics.SUBSCRIBERS_DROPPED.labels(field).inc()
    request = info.context.request
    close = getattr(request, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):  # already gone
            await close(code=WS_TOO_SLOW, reason="slow_consumer")
    raise ShmsError("This subscriber fell too far behind the events and was disconnected")


async def _flush(context: Context) -> None:
    """Write the audit of a withheld event (its denial); there is no answer to fail instead."""
    try:
        await context.audit.flush()
    except Exception:
        log.error("could not audit a withheld subscription event", exc_info=True)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Devices registered, changing status or moving, optionally of one "
        "department (moves out of it included) or one device.",
        metadata=reads(K.EQUIPMENT),
    )
    async def equipment_status_changed(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        equipment_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[EquipmentStatusEvent, None]:
        department = _ref(department_id, "departmentId")
        device = _ref(equipment_id, "equipmentId")
        check = _Filter(info)
        if department is not None:
            await check.department(department)
        if device is not None:
            await check.device(device)
        await _refuse_unfollowable(K.EQUIPMENT, check)

        def here(event: DomainEvent) -> bool:
            return department is None or event.refs.get("department_id") == department

        def wanted(event: DomainEvent) -> bool:
            if device is not None and event.id != device:
                return False
            return here(event) or event.change == "allocated"

        def keep(event: DomainEvent, row: Any) -> bool:
            if here(event):
                return True
            moves = row.allocation_history
            return bool(moves) and str(moves[-1].from_department_id) == department

        events = _visible(
            info,
            "equipmentStatusChanged",
            K.EQUIPMENT,
            EQUIPMENT,
            "equipment_by_id",
            "equipment",
            wanted,
            keep,
        )
        async with contextlib.aclosing(events):
            async for event, row, context in events:
                yield EquipmentStatusEvent(
                    change=event.change,
                    equipment_id=strawberry.ID(event.id),
                    at=event.happened_at,
                    equipment=view(MedicalEquipment, row),
                    context=context,
                )

    @strawberry.subscription(
        description="Appointments booked, moved, cancelled or changed, optionally of one "
        "doctor, patient or department.",
        metadata=reads(K.APPOINTMENT),
    )
    async def appointment_changed(
        self,
        info: Info,
        doctor_id: strawberry.ID | None = None,
        patient_id: strawberry.ID | None = None,
        department_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[AppointmentEvent, None]:
        filters = {
            name: value
            for name, value in (
                ("doctor_id", _ref(doctor_id, "doctorId")),
                ("patient_id", _ref(patient_id, "patientId")),
                ("department_id", _ref(department_id, "departmentId")),
            )
            if value is not None
        }
        check = _Filter(info)
        if "patient_id" in filters:
            await check.patient(filters["patient_id"])
        if "doctor_id" in filters:
            await check.doctor(filters["doctor_id"])
        if "department_id" in filters:
            await check.department(filters["department_id"])
        await _refuse_unfollowable(K.APPOINTMENT, check, filters.get("patient_id"))

        def wanted(event: DomainEvent) -> bool:
            return all(event.refs.get(name) == value for name, value in filters.items())

        events = _visible(
            info,
            "appointmentChanged",
            K.APPOINTMENT,
            APPOINTMENTS,
            "appointment_by_id",
            "appointment",
            wanted,
        )
        async with contextlib.aclosing(events):
            async for event, row, context in events:
                yield AppointmentEvent(
                    change=event.change,
                    appointment_id=strawberry.ID(event.id),
                    at=event.happened_at,
                    appointment=view(Appointment, row),
                    context=context,
                )
