from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models import Appointment
from models.equipment import EquipmentStatus
from tests import factories
from tests.graphql.helpers import code, snapshot

SCHEDULE = """mutation($input: ScheduleAppointmentInput!) {
  scheduleAppointment(input: $input) {
    id status startAt endAt reason departmentId department { code } equipment { serialNumber }
  }
}"""
RESCHEDULE = """mutation($id: ID!, $input: RescheduleAppointmentInput!) {
  rescheduleAppointment(id: $id, input: $input) {
    startAt endAt rescheduleHistory { previousStartAt startAt reason }
  }
}"""
CANCEL = """mutation($id: ID!, $reason: String) {
  cancelAppointment(id: $id, reason: $reason) { status cancellation { reason } }
}"""
START = datetime(2031, 5, 5, 9, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def booking(**overrides: Any) -> dict[str, Any]:
    dept = await factories.department(code="CARD", name="Cardiology")
    doctor = await factories.doctor(dept)
    patient = await factories.patient()
    return {
        "patientId": str(patient.id),
        "doctorId": str(doctor.id),
        "startAt": iso(START),
        "endAt": iso(START + timedelta(minutes=30)),
        "reason": "Chest pain follow-up",
        **overrides,
    }


async def test_schedule_appointment_takes_the_doctors_department(gql: Any) -> None:
    payload = await booking()
    device = await factories.equipment(serial_number="ECG-7")
    data = await gql.data(SCHEDULE, input={**payload, "equipmentId": str(device.id)})
    appt = data["scheduleAppointment"]
    assert appt["status"] == "SCHEDULED"
    assert appt["department"] == {"code": "CARD"}
    assert appt["equipment"] == {"serialNumber": "ECG-7"}
    assert appt["startAt"].startswith("2031-05-05T09:00:00")


async def test_schedule_appointment_rejections_write_nothing(gql: Any) -> None:
    payload = await booking()
    broken = await factories.equipment(status=EquipmentStatus.OUT_OF_SERVICE)
    past = datetime.now(UTC) - timedelta(days=1)
    cases = {
        "endAt": {"endAt": iso(START - timedelta(minutes=5))},
        "startAt": {"startAt": iso(past), "endAt": iso(past + timedelta(minutes=30))},
        "doctorId": {"doctorId": "0" * 24},
        "patientId": {"patientId": "0" * 24},
        "equipmentId": {"equipmentId": str(broken.id)},
        "reason": {"reason": ""},
    }
    for field, change in cases.items():
        error = await gql.error(SCHEDULE, input={**payload, **change})
        assert code(error) == "BAD_USER_INPUT", (field, error)
        assert field in error["extensions"]["fields"], (field, error)
    naive = await gql.error(SCHEDULE, input={**payload, "startAt": "2031-05-05T09:00:00"})
    assert code(naive) == "BAD_USER_INPUT" and "startAt" in naive["extensions"]["fields"]
    assert await Appointment.count() == 0


async def test_reschedule_keeps_history(gql: Any) -> None:
    appt = await factories.appointment(start=START)
    later = START + timedelta(days=1)
    data = await gql.data(
        RESCHEDULE,
        id=str(appt.id),
        input={"startAt": iso(later), "endAt": iso(later + timedelta(hours=1)), "reason": "Ill"},
    )
    moved = data["rescheduleAppointment"]
    assert moved["startAt"].startswith("2031-05-06T09:00:00")
    assert moved["endAt"].startswith("2031-05-06T10:00:00")
    assert len(moved["rescheduleHistory"]) == 1
    assert moved["rescheduleHistory"][0]["previousStartAt"].startswith("2031-05-05T09:00:00")
    assert moved["rescheduleHistory"][0]["reason"] == "Ill"


async def test_reschedule_rejections_change_nothing(gql: Any) -> None:
    appt = await factories.appointment(start=START)
    cancelled = await factories.appointment(start=START, status="cancelled")
    before = await snapshot(Appointment)
    later = START + timedelta(days=1)
    window = {"startAt": iso(later), "endAt": iso(later + timedelta(minutes=30))}
    backwards = {"startAt": iso(later), "endAt": iso(later - timedelta(minutes=30))}
    assert code(await gql.error(RESCHEDULE, id=str(appt.id), input=backwards)) == "BAD_USER_INPUT"
    not_scheduled = await gql.error(RESCHEDULE, id=str(cancelled.id), input=window)
    assert code(not_scheduled) == "BAD_USER_INPUT" and "cancelled" in not_scheduled["message"]
    assert code(await gql.error(RESCHEDULE, id="0" * 24, input=window)) == "NOT_FOUND"
    assert await snapshot(Appointment) == before


async def test_cancel_appointment_once(gql: Any) -> None:
    appt = await factories.appointment(start=START)
    data = await gql.data(CANCEL, id=str(appt.id), reason="Feeling better")
    assert data["cancelAppointment"] == {
        "status": "CANCELLED",
        "cancellation": {"reason": "Feeling better"},
    }
    before = await snapshot(Appointment)
    again = await gql.error(CANCEL, id=str(appt.id))
    assert code(again) == "BAD_USER_INPUT"
    assert code(await gql.error(CANCEL, id="0" * 24)) == "NOT_FOUND"
    assert await snapshot(Appointment) == before


async def test_appointments_filters(gql: Any) -> None:
    cardio, ortho = await factories.department(), await factories.department()
    house, grey = await factories.doctor(cardio), await factories.doctor(ortho)
    ann, bob = await factories.patient(), await factories.patient()
    device = await factories.equipment(cardio)
    a1 = await factories.appointment(ann, house, device, start=START)
    a2 = await factories.appointment(
        bob, house, start=START + timedelta(days=1), status="cancelled"
    )
    a3 = await factories.appointment(ann, grey, start=START + timedelta(days=2))

    async def ids(filter: dict[str, Any]) -> list[str]:
        data = await gql.data(
            "query($f: AppointmentFilter) { appointments(filter: $f) { nodes { id } } }", f=filter
        )
        return [n["id"] for n in data["appointments"]["nodes"]]

    assert await ids({}) == [str(a1.id), str(a2.id), str(a3.id)]
    assert await ids({"doctorId": str(house.id)}) == [str(a1.id), str(a2.id)]
    assert await ids({"patientId": str(ann.id)}) == [str(a1.id), str(a3.id)]
    assert await ids({"departmentId": str(ortho.id)}) == [str(a3.id)]
    assert await ids({"equipmentId": str(device.id)}) == [str(a1.id)]
    assert await ids({"status": ["CANCELLED"]}) == [str(a2.id)]
    assert await ids({"status": ["SCHEDULED", "CANCELLED"], "doctorId": str(house.id)}) == [
        str(a1.id),
        str(a2.id),
    ]
    window = {"from": iso(START + timedelta(hours=1)), "to": iso(START + timedelta(days=2))}
    assert await ids(window) == [str(a2.id)]
    inverted = await gql.error(
        "query($f: AppointmentFilter) { appointments(filter: $f) { nodes { id } } }",
        f={"from": iso(START), "to": iso(START - timedelta(days=1))},
    )
    assert code(inverted) == "BAD_USER_INPUT"


async def test_relation_lists_filter_by_status(gql: Any) -> None:
    doctor = await factories.doctor()
    patient = await factories.patient()
    await factories.appointment(patient, doctor, start=START)
    await factories.appointment(patient, doctor, start=START + timedelta(days=1), status="no_show")
    data = await gql.data(
        "query($id: ID!) { patient(id: $id) { all: appointments { totalCount }"
        " missed: appointments(status: [NO_SHOW]) { totalCount nodes { status } } } }",
        id=str(patient.id),
    )
    assert data["patient"]["all"]["totalCount"] == 2
    assert data["patient"]["missed"] == {"totalCount": 1, "nodes": [{"status": "NO_SHOW"}]}
