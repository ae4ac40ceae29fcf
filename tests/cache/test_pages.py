"""Cached list pages are never stale: every write through the services makes them unreachable,
and a filter is part of the key with its types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cache.documents import DocumentCache
from tests import factories
from tests.cache.helpers import cost

SCHEDULE = """mutation($input: ScheduleAppointmentInput!) {
  scheduleAppointment(input: $input) { id } }"""
CANCEL = """mutation($id: ID!) { cancelAppointment(id: $id) { status } }"""
PAGE = """{ appointments(first: 50) { nodes { id status patient { id } } } }"""
MY_PATIENTS = """{ patients(first: 50) { nodes { id } } }"""
START = datetime(2031, 6, 2, 9, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def booking(patient: Any, doctor: Any, hours: int) -> dict[str, Any]:
    start = START + timedelta(hours=hours)
    return {
        "patientId": str(patient.id),
        "doctorId": str(doctor.id),
        "startAt": iso(start),
        "endAt": iso(start + timedelta(minutes=30)),
        "reason": "Follow-up",
    }


async def test_a_cached_page_follows_every_write(client_as: Any, cache: DocumentCache) -> None:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    patient = await factories.patient()
    desk = client_as(roles=["admin", "admin_staff"])
    first = await desk.data(SCHEDULE, input=booking(patient, doctor, 1))
    assert [n["id"] for n in (await desk.data(PAGE))["appointments"]["nodes"]] == [
        first["scheduleAppointment"]["id"]
    ]
    with cost(cache) as warm:
        await desk.data(PAGE)
    assert warm.reads == {}  # served from the caches

    second = (await desk.data(SCHEDULE, input=booking(patient, doctor, 0)))["scheduleAppointment"]
    nodes = (await desk.data(PAGE))["appointments"]["nodes"]
    assert [n["id"] for n in nodes] == [second["id"], first["scheduleAppointment"]["id"]]

    await desk.data(CANCEL, id=second["id"])
    nodes = (await desk.data(PAGE))["appointments"]["nodes"]
    assert nodes[0]["status"] == "CANCELLED"


async def test_a_clinicians_own_list_follows_their_care_relations(
    client_as: Any, cache: DocumentCache
) -> None:
    """The clinician's filter names the patients they treat; booking a new one changes the
    patients' care (a write of its own), so the cached page of the old filter is not served."""
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    known = await factories.patient(clinician_access=False)
    newcomer = await factories.patient(clinician_access=False)
    desk = client_as(roles=["admin_staff"], did=str(dept.id))
    mine = client_as(roles=["doctor"], sid=str(doctor.id), did=str(dept.id))
    await desk.data(SCHEDULE, input=booking(known, doctor, 1))
    assert {n["id"] for n in (await mine.data(MY_PATIENTS))["patients"]["nodes"]} == {str(known.id)}
    await mine.data(MY_PATIENTS)  # cached now
    await desk.data(SCHEDULE, input=booking(newcomer, doctor, 2))
    assert {n["id"] for n in (await mine.data(MY_PATIENTS))["patients"]["nodes"]} == {
        str(known.id),
        str(newcomer.id),
    }
