"""Patient lookups, search and registration."""

from __future__ import annotations

import strawberry

from schema.common import Connection, connection, create_data, oid, update_data, view
from schema.context import Info
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
        page = await patients.list_patients(search, info.context.page(first, after))
        return connection(Patient, page)


@strawberry.type
class PatientMutation:
    @strawberry.mutation(description="Register a new patient.")
    async def register_patient(self, input: RegisterPatientInput) -> Patient:
        return view(Patient, await patients.register_patient(create_data(input)))

    @strawberry.mutation(description="Change a patient's record; only the given fields change.")
    async def update_patient(self, id: strawberry.ID, input: UpdatePatientInput) -> Patient:
        return view(Patient, await patients.update_patient(oid(id), update_data(input)))
