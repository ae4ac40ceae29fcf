"""What the diagnostic roles read of the people and places their orders name.

Lab technicians label samples: they read a patient's identity row (names, date of birth, sex) and
the ordering doctor's row, nothing else of either (no contact, national id, clinical, schedule or
billing fields; no other staff, no appointments). Radiologists are doctors' accounts: they read
patients, doctors, departments and devices exactly as a doctor of Radiology does, under the same
relations, and never more.
"""

from __future__ import annotations

from typing import Any

from models import Patient
from tests import factories
from tests.graphql.helpers import code
from tests.laboratory.world import ordered, world
from tests.radiology.helpers import CANCEL, SCHEDULE, Callers, facility, slot
from tests.radiology.helpers import ordered as imaging_ordered

LABEL = """query($id: ID!) { labOrder(id: $id) {
  id patient { id firstName lastName dateOfBirth sex }
  orderingDoctor { id lastName specialty department { id name } } } }"""
CHART = """query($id: ID!) { patient(id: $id) {
  id firstName nationalId contact { phone } emergencyContact { name }
  allergies { substance } medicalHistory { condition } primaryDoctorId
  appointments { nodes { id } } billingAccount { id } } }"""
BEYOND_IDENTITY = (
    "nationalId",
    "contact",
    "emergencyContact",
    "allergies",
    "medicalHistory",
    "primaryDoctorId",
    "appointments",
    "billingAccount",
)
DOCTOR_DETAILS = """query($id: ID!) { doctor(id: $id) {
  id licenceNumber contact { email } appointments { nodes { id } } } }"""


def errors_at(body: dict[str, Any]) -> dict[tuple[Any, ...], str]:
    return {tuple(e.get("path") or ()): code(e) for e in body.get("errors", [])}


async def test_a_lab_technician_reads_whom_a_sample_is_for_and_who_ordered_it(
    client_as: Any,
) -> None:
    w = await world(client_as)
    order_id = await ordered(w)
    body = await w["tech"](LABEL, id=order_id)
    assert "errors" not in body, body
    order = body["data"]["labOrder"]
    assert order["patient"] == {
        "id": str(w.patient.id),
        "firstName": w.patient.first_name,
        "lastName": w.patient.last_name,
        "dateOfBirth": "1960-05-01",
        "sex": "MALE",
    }
    assert order["orderingDoctor"]["id"] == str(w.doctor.id)
    assert order["orderingDoctor"]["department"] == {
        "id": str(w.department.id),
        "name": w.department.name,
    }


async def test_a_lab_technician_reads_the_identity_row_and_nothing_more(client_as: Any) -> None:
    w = await world(client_as)
    await ordered(w)
    tech = w["tech"]
    body = await tech(CHART, id=str(w.patient.id))
    assert errors_at(body) == {("patient", f): "FORBIDDEN" for f in BEYOND_IDENTITY}, body
    chart = body["data"]["patient"]
    assert chart["firstName"] == w.patient.first_name
    assert all(chart[f] is None for f in BEYOND_IDENTITY)
    # The ordering doctor's row, not their contact details, licence or schedule.
    details = await tech(DOCTOR_DETAILS, id=str(w.doctor.id))
    assert set(errors_at(details)) == {
        ("doctor", "licenceNumber"),
        ("doctor", "contact"),
        ("doctor", "appointments"),
    }
    # No other staff, appointments or clinical records.
    for query in (
        "{ nurses { nodes { id } } }",
        "{ adminStaff { nodes { id } } }",
        "{ appointments { nodes { id } } }",
        "{ prescriptions { nodes { id } } }",
        "{ equipmentList { nodes { id } } }",
    ):
        assert code(await tech.error(query)) == "FORBIDDEN", query


def _nulled(data: Any, path: tuple[Any, ...]) -> Any:
    """``data`` with the value at ``path`` (a GraphQL error path) replaced by null."""
    if not path:
        return None
    if data is None:
        return None
    copy = list(data) if isinstance(data, list) else dict(data)
    copy[path[0]] = _nulled(data[path[0]], path[1:])
    return copy


RADIOLOGY_VIEW = """query($id: ID!) { imagingOrder(id: $id) {
  id patientId patient { id firstName lastName dateOfBirth sex }
  orderingDoctor { id lastName department { name } }
  department { id name code }
  study { id equipment { id name equipmentType department { code } } } } }"""


async def test_a_radiologist_reads_the_patient_doctor_department_and_scanner_of_an_order(
    client_as: Any,
) -> None:
    f = await facility()
    c = Callers(client_as, f)
    order_id = await imaging_ordered(c, f)
    await c.radiologist.data(SCHEDULE, orderId=order_id, input=slot(f.ct))
    body = await c.radiologist(RADIOLOGY_VIEW, id=order_id)
    assert "errors" not in body, body
    order = body["data"]["imagingOrder"]
    assert order["patient"]["id"] == str(f.patient.id)
    assert order["patient"]["lastName"] == f.patient.last_name
    assert order["orderingDoctor"] == {
        "id": str(f.doctor.id),
        "lastName": f.doctor.last_name,
        "department": {"name": f.ward.name},
    }
    assert order["department"] == {"id": str(f.radiology.id), "name": "Radiology", "code": "RAD"}
    assert order["study"]["equipment"] == {
        "id": str(f.ct.id),
        "name": "CT",
        "equipmentType": "CT scanner",
        "department": {"code": "RAD"},
    }


async def test_a_radiologist_sees_no_more_than_a_doctor_of_radiology(client_as: Any) -> None:
    """The same person signed in as a radiologist and as a doctor: the same answers, field by
    field, for the patient of an open order, for a patient Radiology never saw, and for staff."""
    f = await facility()
    c = Callers(client_as, f)
    order_id = await imaging_ordered(c, f)
    stranger = await factories.patient(clinician_access=False)
    claims = {"sid": str(f.radiologist.id), "did": str(f.radiology.id)}
    as_radiologist = client_as(roles=["radiologist"], **claims)
    as_doctor = client_as(roles=["doctor"], **claims)

    async def same(query: str, **variables: Any) -> dict[str, Any]:
        """The radiologist's answer: the doctor's, or less (a field null and FORBIDDEN)."""
        mine = await as_radiologist(query, **variables)
        theirs = await as_doctor(query, **variables)
        withheld, refused = errors_at(mine), errors_at(theirs)
        assert refused.items() <= withheld.items(), (mine, theirs)
        assert set(withheld.values()) <= {"FORBIDDEN"}, mine
        expected = theirs.get("data")
        for path in set(withheld) - set(refused):
            expected = _nulled(expected, path)
        assert mine.get("data") == expected, repr((mine, theirs))
        return mine

    # Radiology sees the patient while the order is open: the row and the schedule, not the
    # chart (that needs a care relationship), nor billing.
    seen = await same(CHART, id=str(f.patient.id))
    assert seen["data"]["patient"]["firstName"] == f.patient.first_name
    assert set(errors_at(seen)) >= {
        ("patient", f)
        for f in (
            "nationalId",
            "contact",
            "emergencyContact",
            "allergies",
            "medicalHistory",
            "billingAccount",
        )
    }
    listed = await same("{ patients { nodes { id } } }")
    assert listed["data"]["patients"]["nodes"] == [{"id": str(f.patient.id)}]
    # A patient Radiology has no order for: nothing.
    refused = await same(CHART, id=str(stranger.id))
    assert errors_at(refused) == {("patient",): "FORBIDDEN"}
    for query, variables in (
        (DOCTOR_DETAILS, {"id": str(f.doctor.id)}),
        ("query($id: ID!) { nurse(id: $id) { id licenceNumber } }", {"id": str(f.radiographer.id)}),
        ("query($id: ID!) { department(id: $id) { name nurses { nodes { id } } } }",
         {"id": str(f.radiology.id)}),
        ("query($id: ID!) { equipment(id: $id) { id name status } }", {"id": str(f.ct.id)}),
    ):  # fmt: skip
        await same(query, **variables)

    # Once the order is cancelled, Radiology no longer sees the patient.
    await c.doctor.data(CANCEL, id=order_id, reason="Resolved clinically")
    gone = await same(CHART, id=str(f.patient.id))
    assert errors_at(gone) == {("patient",): "FORBIDDEN"}
    assert await Patient.get(f.patient.id) is not None
