"""Who books, who sees the case, who records it: from the declarations in models/theatre.py."""

from __future__ import annotations

from typing import Any

from models import Patient
from models.base import utcnow
from models.theatre import SurgeryBooking
from tests.graphql.helpers import code
from tests.theatre.helpers import (
    BOOK,
    CHECKLIST,
    RECORD,
    START_SURGERY,
    Callers,
    booked,
    booking,
    iso,
    suite,
)

SEE = """query($id: ID!) { surgeryBooking(id: $id) { id status } }"""
PROCEDURE = """query($id: ID!) { surgeryBooking(id: $id) { id procedure { description } } }"""
NOTES = """query($id: ID!) { surgeryBooking(id: $id) { id notes } }"""
CHARGE = """query($id: ID!) { surgeryBooking(id: $id) { id theatreCharge chargedAt } }"""
LIST = """{ surgeryBookings { nodes { id } } }"""


async def test_the_theatre_departments_desk_and_admins_book_nobody_else(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    for caller in (c.other_desk, c.surgeon, c.nurse, c.patient, c.billing, c.analyst):
        answer = await caller(BOOK, input=booking(s))
        assert code(answer["errors"][0]) == "FORBIDDEN", answer
    assert await SurgeryBooking.count() == 0
    assert "errors" not in await c.admin(BOOK, input=booking(s))


async def test_the_case_team_theatre_nurses_and_the_patient_see_the_booking(
    client_as: Any,
) -> None:
    s = await suite()
    c = Callers(client_as, s)
    id = await booked(c, s)
    for caller in (c.surgeon, c.anaesthetist, c.nurse, c.scheduler, c.admin, c.patient):
        assert (await caller.data(SEE, id=id))["surgeryBooking"]["id"] == id
        assert (await caller.data(PROCEDURE, id=id))["surgeryBooking"]["procedure"]
        assert [n["id"] for n in (await caller.data(LIST))["surgeryBookings"]["nodes"]] == [id]
    for caller in (c.outsider, c.other_nurse, c.other_desk, c.patient2):
        answer = await caller(SEE, id=id)
        assert answer.get("data", {}).get("surgeryBooking") is None
        assert (await caller.data(LIST))["surgeryBookings"]["nodes"] == []
    analyst = await c.analyst(LIST)
    assert code(analyst["errors"][0]) == "FORBIDDEN"


async def test_patients_never_see_staff_notes_billing_sees_only_charges(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    id = await booked(c, s)
    assert (await c.surgeon.data(NOTES, id=id))["surgeryBooking"]["notes"]
    for caller in (c.patient, c.billing):
        answer = await caller(NOTES, id=id)
        assert code(answer["errors"][0]) == "FORBIDDEN"
    billing = await c.billing.data(CHARGE, id=id)
    assert billing["surgeryBooking"]["id"] == id
    answer = await c.billing(PROCEDURE, id=id)
    assert code(answer["errors"][0]) == "FORBIDDEN"


async def test_a_booking_makes_surgeon_and_anaesthetist_treat_the_patient(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    await booked(c, s)
    patient = await Patient.get(s.patient.id)
    assert patient is not None
    treating = {link.clinician_id for link in patient.care}
    assert {s.surgeon.id, s.anaesthetist.id} <= treating
    chart = """query($id: ID!) { patient(id: $id) { id lastName } }"""
    for caller in (c.surgeon, c.anaesthetist):
        found = await caller.data(chart, id=str(s.patient.id))
        assert found["patient"]["id"] == str(s.patient.id)


async def test_theatre_nurses_record_times_doctors_record_the_procedure(client_as: Any) -> None:
    s = await suite()
    c = Callers(client_as, s)
    id = await booked(c, s)
    outsider = await c.other_nurse(START_SURGERY, id=id)
    assert code(outsider["errors"][0]) == "FORBIDDEN"
    started = await c.nurse.data(START_SURGERY, id=id, input={"checklist": CHECKLIST})
    record_id = started["startSurgery"]["id"]
    times = {"inTheatreAt": iso(utcnow())}
    assert "errors" not in await c.nurse(RECORD, id=record_id, input=times)
    answer = await c.other_nurse(RECORD, id=record_id, input=times)
    assert code(answer["errors"][0]) == "FORBIDDEN"
    clinical = await c.nurse(RECORD, id=record_id, input={"complications": "Bleeding"})
    assert code(clinical["errors"][0]) == "FORBIDDEN"
    ok = await c.anaesthetist(RECORD, id=record_id, input={"anaesthesiaType": "REGIONAL"})
    assert "errors" not in ok, ok
