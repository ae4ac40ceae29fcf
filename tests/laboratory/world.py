"""A small laboratory world and the GraphQL documents the laboratory tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from demo.laboratory import seed_catalogue
from models.departments import Department
from models.laboratory import LabTest
from models.outpatient import Arrival, OutpatientVisit, VisitStatus
from models.patients import Patient, Sex
from models.staff import Doctor
from tests import factories

CREATE = """mutation($input: CreateLabOrderInput!) {
  createLabOrder(input: $input) {
    id status priority orderingDoctorId visitId tests { code name specimenType }
  }
}"""
COLLECT = """mutation($id: ID!) {
  collectLabSamples(orderId: $id) {
    id status samples { nodes { id accessionNumber specimenType status replacesSampleId } }
  }
}"""
RECEIVE = "mutation($id: ID!) { receiveLabSample(id: $id) { id status custody { status by } } }"
REJECT = """mutation($id: ID!, $reason: String!) {
  rejectLabSample(id: $id, reason: $reason) { id status rejectionReason }
}"""
ENTER = """mutation($id: ID!, $results: [LabResultInput!]!) {
  enterLabResults(orderId: $id, results: $results) {
    id analyteCode value unit referenceRange flag critical status version current supersedesId
  }
}"""
VERIFY = """mutation($id: ID!) {
  verifyLabOrder(id: $id) {
    id status verifiedAt report { testCode analyteCode value unit referenceRange flag version }
  }
}"""
ORDER = """query($id: ID!) {
  labOrder(id: $id) {
    id status report { analyteCode value flag }
    results { nodes { id analyteCode value flag status version } }
  }
}"""

BMP_NORMAL = {"NA": 140.0, "K": 4.2, "CL": 101.0, "CREA": 80.0, "GLU": 5.0}


def results(values: dict[str, float], test: str = "BMP", **extra: Any) -> list[dict[str, Any]]:
    return [{"testCode": test, "analyteCode": k, "value": v, **extra} for k, v in values.items()]


@dataclass
class World:
    department: Department
    doctor: Doctor
    patient: Patient
    catalogue: dict[str, LabTest]
    clients: dict[str, Any]

    def __getitem__(self, role: str) -> Any:
        return self.clients[role]


async def world(client_as: Any, **patient: Any) -> World:
    """The catalogue; a doctor treating a 66-year-old man (an upcoming appointment); a caller
    per role: doctor, lab technicians ``tech`` and ``tech2``, the patient, another patient, a
    doctor with no relation, billing, analyst, admin."""
    catalogue = {t.code: t for t in await seed_catalogue()}
    department = await factories.department(name="Cardiology", code=f"C{factories.n()}")
    doctor = await factories.doctor(department)
    fields = {"sex": Sex.MALE, "date_of_birth": date(1960, 5, 1), **patient}
    me = await factories.patient(clinician_access=False, **fields)
    await factories.appointment(me, doctor)
    other = await factories.patient(clinician_access=False)
    stranger = await factories.doctor()
    clients = {
        "doctor": client_as(roles=["doctor"], sid=str(doctor.id), did=str(department.id)),
        "tech": client_as(sub="lab:tech-1", roles=["lab_technician"]),
        "tech2": client_as(sub="lab:tech-2", roles=["lab_technician"]),
        "patient": client_as(roles=["patient"], pid=str(me.id)),
        "other_patient": client_as(roles=["patient"], pid=str(other.id)),
        "stranger": client_as(
            roles=["doctor"], sid=str(stranger.id), did=str(stranger.department_id)
        ),
        "billing": client_as(roles=["billing"]),
        "analyst": client_as(roles=["analyst"]),
        "admin": client_as(roles=["admin"]),
        "nurse": client_as(roles=["nurse"]),
    }
    return World(department, doctor, me, catalogue, clients)


async def visit(patient: Patient, doctor: Doctor) -> OutpatientVisit:
    now = datetime.now(UTC).replace(microsecond=0)
    return await OutpatientVisit(
        patient_id=patient.id,
        doctor_id=doctor.id,
        department_id=doctor.department_id,
        arrival=Arrival.WALK_IN,
        status=VisitStatus.IN_CONSULTATION,
        queue_date=now.date().isoformat(),
        queue_number=factories.n(),
        checked_in_at=now,
        status_at=now,
    ).insert()


async def ordered(w: World, codes: list[str] | None = None, **input: Any) -> str:
    data = await w["doctor"].data(
        CREATE,
        input={"patientId": str(w.patient.id), "testCodes": codes or ["BMP"], **input},
    )
    return str(data["createLabOrder"]["id"])


async def received(w: World, codes: list[str] | None = None) -> str:
    """An order whose samples are collected and received."""
    id = await ordered(w, codes)
    collected = await w["tech"].data(COLLECT, id=id)
    for sample in collected["collectLabSamples"]["samples"]["nodes"]:
        await w["tech"].data(RECEIVE, id=sample["id"])
    return id


async def resulted(w: World, values: dict[str, float] | None = None) -> str:
    id = await received(w)
    await w["tech"].data(ENTER, id=id, results=results(values or BMP_NORMAL))
    return id


async def verified(w: World, values: dict[str, float] | None = None) -> str:
    id = await resulted(w, values)
    await w["tech2"].data(VERIFY, id=id)
    return id
