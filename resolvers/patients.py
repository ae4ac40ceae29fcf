"""Patient lookups, search and registration."""

from __future__ import annotations

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from schema.common import (
    Connection,
    connection,
    create_data,
    oid,
    update_data,
    view,
)
from schema.context import Info
from schema.enforce import acts
from schema.patients import Patient, RegisterPatientInput, UpdatePatientInput
from services import patients


@strawberry.type
class PatientQuery:
    @strawberry.field(description="One patient by id; null if there is none.")
    async def patient(self, info: Info, id: strawberry.ID) -> Patient | None:
        return await info.context.loaders.patient_by_id.load(oid(id))

    @strawberry.field(description="Patients by name; `search` matches word prefixes, any order.")
    async def patients(
        self,
        info: Info,
        search: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Patient]:
        access = info.context.access
        scope = await access.scope(K.PATIENT)
        page = await patients.list_patients(search, info.context.page(first, after), scope)
        return connection(Patient, page)


@strawberry.type
class PatientMutation:
    @strawberry.mutation(
        description="Register a new patient.", metadata=acts(K.PATIENT, Action.CREATE)
    )
    async def register_patient(self, info: Info, input: RegisterPatientInput) -> Patient:
        await info.context.access.require(K.PATIENT, Action.CREATE)
        data = create_data(input)
        created = await patients.register_patient(data)
        info.context.access.wrote(K.PATIENT, created, Action.CREATE, data)
        return view(Patient, created)

    @strawberry.mutation(
        description="Change a patient's record; only the given fields change.",
        metadata=acts(K.PATIENT, Action.UPDATE),
    )
    async def update_patient(
        self, info: Info, id: strawberry.ID, input: UpdatePatientInput
    ) -> Patient:
        changes = update_data(input)
        patient = await patients.get_patient(oid(id))
        await info.context.access.require_update(K.PATIENT, patient, changes)
        updated = await patients.update_patient(patient.id, changes)  # type: ignore[arg-type]
        info.context.access.wrote(K.PATIENT, updated, Action.UPDATE, changes)
        return view(Patient, updated)
