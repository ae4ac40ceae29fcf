"""Vital signs: record a set, mark one entered in error, read sets and a patient's trend."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated

import strawberry
from bson import ObjectId

from auth.policy import EntityKind as K
from auth.roles import Role
from errors import BadUserInput, Forbidden
from models.clinical import PerformerRole
from models.patients import Patient as PatientDoc
from models.vitals import VitalMeasurement
from resolvers.common import perform
from schema.common import Connection, Edge, PageInfo, connection, create_data, oid, view
from schema.context import Info
from schema.enforce import acts
from schema.vitals import RecordVitalSignsInput, VitalSigns, VitalSignsPoint
from services import vitals
from services.vitals import VitalSignsFilter

From = Annotated[
    datetime | None, strawberry.argument(name="from", description="Recorded at or after this.")
]
To = Annotated[datetime | None, strawberry.argument(name="to", description="At or before this.")]


def in_own_name(info: Info) -> tuple[ObjectId, PerformerRole]:
    """Clinical records name the clinician who made them: the caller, never someone else."""
    principal = info.context.access.principal
    if principal.staff_id is None or not principal.has(Role.DOCTOR, Role.NURSE):
        raise Forbidden("Only a clinician with a staff record may write this, in their own name")
    role = PerformerRole.DOCTOR if principal.has(Role.DOCTOR) else PerformerRole.NURSE
    return principal.staff_id, role


async def patient_of_input(info: Info, patient_id: object) -> PatientDoc:
    """The patient a new record is about: the caller's relation to them is what permits it."""
    patient = await info.context.loaders.patient_by_id.load(patient_id)
    if patient is None:
        raise BadUserInput("patientId: no such patient", {"patientId": "no such patient"})
    return patient


def _optional(value: strawberry.ID | None, field: str) -> ObjectId | None:
    return oid(value, field) if value is not None else None


@strawberry.type
class VitalsQuery:
    @strawberry.field
    async def vital_signs(self, info: Info, id: strawberry.ID) -> VitalSigns | None:
        return await info.context.loaders.vital_signs_by_id.load(oid(id))

    @strawberry.field(description="Sets of vital signs, oldest first, filtered.")
    async def vital_signs_sets(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        visit_id: strawberry.ID | None = None,
        admission_id: strawberry.ID | None = None,
        recorded_by_id: strawberry.ID | None = None,
        since: From = None,
        until: To = None,
        include_entered_in_error: bool = False,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[VitalSigns]:
        where = VitalSignsFilter(
            patient_id=_optional(patient_id, "patientId"),
            visit_id=_optional(visit_id, "visitId"),
            admission_id=_optional(admission_id, "admissionId"),
            recorded_by_id=_optional(recorded_by_id, "recordedById"),
            since=since,
            until=until,
            include_entered_in_error=include_entered_in_error,
        )
        scope = await info.context.access.scope(K.VITAL_SIGNS)
        page = await vitals.list_vital_signs(where, info.context.page(first, after), scope)
        return connection(VitalSigns, page)

    @strawberry.field(
        description="A patient's trend of one measurement: its values oldest first, within an "
        "optional time range, a page at a time (sets entered in error left out)."
    )
    async def vital_signs_series(
        self,
        info: Info,
        patient_id: strawberry.ID,
        measurement: VitalMeasurement,
        since: From = None,
        until: To = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[VitalSignsPoint]:
        scope = await info.context.access.scope(K.VITAL_SIGNS)
        page, points = await vitals.series(
            oid(patient_id, "patientId"),
            measurement,
            since,
            until,
            info.context.page(first, after),
            scope,
        )
        nodes: list[VitalSignsPoint] = list(points)  # type: ignore[arg-type]
        edges = [Edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)]
        return Connection(
            edges=edges,
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=page.cursors[-1] if page.cursors else None
            ),
            _count=page.count,
        )


@strawberry.type
class VitalsMutation:
    @strawberry.mutation(
        description="Record a set of vital signs in the caller's name.",
        metadata=acts(K.VITAL_SIGNS, "record"),
    )
    async def record_vital_signs(self, info: Info, input: RecordVitalSignsInput) -> VitalSigns:
        data = create_data(input)
        who, role = in_own_name(info)
        data["recorded_by_id"], data["recorded_by_role"] = who, role.value
        patient = await patient_of_input(info, data.get("patient_id"))
        run = partial(vitals.record_vital_signs, data)
        made = await perform(info, K.VITAL_SIGNS, "record", run, data, patient=patient)
        return view(VitalSigns, made)

    @strawberry.mutation(
        description="Take a wrong set out of the trend (kept, with the reason); by whoever "
        "recorded it.",
        metadata=acts(K.VITAL_SIGNS, "markEnteredInError"),
    )
    async def mark_vital_signs_entered_in_error(
        self, info: Info, id: strawberry.ID, reason: str
    ) -> VitalSigns:
        row = await vitals.get_vital_signs(oid(id))
        run = partial(vitals.mark_entered_in_error, oid(id), reason)
        done = await perform(
            info, K.VITAL_SIGNS, "markEnteredInError", run, ["status", "error_reason"], row=row
        )
        return view(VitalSigns, done)
