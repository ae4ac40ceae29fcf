"""Input errors a client can act on: every invalid field of one input in one answer, under
``extensions.fields``, over HTTP as a front end sends them (issue 13, point 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models import Appointment, Patient
from models.scheduling import AppointmentStatus
from tests import factories
from tests.graphql.helpers import code, snapshot

REGISTER = """mutation($input: RegisterPatientInput!) { registerPatient(input: $input) { id } }"""
UPDATE = """mutation($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { id }
}"""
SCHEDULE = """mutation($input: ScheduleAppointmentInput!) {
  scheduleAppointment(input: $input) { id }
}"""
RESCHEDULE = """mutation($id: ID!, $input: RescheduleAppointmentInput!) {
  rescheduleAppointment(id: $id, input: $input) { id }
}"""
NOBODY = "0" * 23 + "1"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_register_patient_reports_three_bad_fields_together(gql: Any) -> None:
    error = await gql.error(
        REGISTER,
        input={
            "firstName": " ",
            "lastName": "Hopper",
            "dateOfBirth": "2999-01-01",
            "contact": {"email": "not-an-email"},
        },
    )
    assert code(error) == "BAD_USER_INPUT"
    assert set(error["extensions"]["fields"]) == {"firstName", "dateOfBirth", "contact.email"}
    for field in ("firstName", "dateOfBirth", "contact.email"):
        assert field in error["message"]  # the message lists them too, for logs and humans
    assert await Patient.count() == 0


async def test_an_unknown_reference_is_reported_with_the_field_errors(gql: Any) -> None:
    error = await gql.error(
        REGISTER,
        input={"firstName": "", "lastName": "Lovelace", "dateOfBirth": "1815-12-10",
               "primaryDoctorId": NOBODY},
    )  # fmt: skip
    assert error["extensions"]["fields"] == {
        "firstName": "String should have at least 1 character",
        "dateOfBirth": "must be after 1900",
        "primaryDoctorId": "no such doctor",
    }


async def test_update_patient_reports_its_fields_and_reference_together(gql: Any) -> None:
    patient = await factories.patient()
    before = await snapshot(Patient)
    error = await gql.error(
        UPDATE,
        id=str(patient.id),
        input={"lastName": "", "contact": {"phone": "x"}, "primaryDoctorId": NOBODY},
    )
    assert set(error["extensions"]["fields"]) == {"lastName", "contact.phone", "primaryDoctorId"}
    assert await snapshot(Patient) == before


async def test_a_booking_reports_every_problem_at_once(gql: Any) -> None:
    past = datetime(2020, 1, 1, 9, 1, tzinfo=UTC)
    error = await gql.error(
        SCHEDULE,
        input={
            "patientId": NOBODY,
            "doctorId": NOBODY,
            "startAt": iso(past),
            "endAt": iso(past - timedelta(minutes=30)),
            "reason": "",
        },
    )
    assert code(error) == "BAD_USER_INPUT"
    fields = error["extensions"]["fields"]
    assert set(fields) == {"patientId", "doctorId", "startAt", "endAt", "reason"}
    assert "must be in the future" in fields["startAt"] and "grid" in fields["startAt"]
    assert "must be after startAt" in fields["endAt"] and "grid" in fields["endAt"]
    assert await Appointment.count() == 0


async def test_a_booking_with_one_problem_keeps_its_own_message(gql: Any) -> None:
    patient, doctor = await factories.patient(), await factories.doctor(active=False)
    start = factories.FUTURE
    error = await gql.error(
        SCHEDULE,
        input={"patientId": str(patient.id), "doctorId": str(doctor.id), "startAt": iso(start),
               "endAt": iso(start + timedelta(minutes=30)), "reason": "Check-up"},
    )  # fmt: skip
    assert error["message"] == "doctorId: doctor is not active"
    assert error["extensions"]["fields"] == {"doctorId": "doctor is not active"}


async def test_a_reschedule_reports_the_times_and_the_state_together(gql: Any) -> None:
    booked = await factories.appointment(status=AppointmentStatus.CANCELLED)
    past = datetime(2020, 1, 1, 9, 0, tzinfo=UTC)
    error = await gql.error(
        RESCHEDULE,
        id=str(booked.id),
        input={"startAt": iso(past), "endAt": iso(past + timedelta(hours=13))},
    )
    assert error["extensions"]["fields"] == {
        "id": "appointment is cancelled",
        "startAt": "must be in the future",
        "endAt": "an appointment may last at most 12 hours",
    }
