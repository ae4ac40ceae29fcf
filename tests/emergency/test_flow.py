"""The ED journey over GraphQL: arrival, triage (and its validation), treatment, dispositions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models.emergency import EmergencyVisit
from models.patients import Patient
from tests import factories
from tests.emergency.helpers import (
    DISPOSE,
    LWBS,
    REGISTER,
    REGISTER_DESK,
    START,
    TRIAGE,
    VISIT,
    VISITS,
    VITALS,
    emergency_department,
)


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def test_an_arrival_is_triaged_treated_and_discharged(client_as: Any) -> None:
    ed = await emergency_department()
    patient = await factories.patient()
    desk, nurse, doctor = (client_as(**ed.claims(r)) for r in ("admin_staff", "nurse", "doctor"))

    arrival = {
        "patientId": str(patient.id),
        "departmentId": ed.id,
        "arrivalMode": "AMBULANCE",
        "chiefComplaint": "Chest pain for two hours",
    }
    visit = (await desk.data(REGISTER_DESK, input=arrival))["registerEmergencyArrival"]
    assert visit["status"] == "WAITING" and visit["patientId"] == str(patient.id)

    # A second arrival of the same patient while the first is open is refused.
    again = await desk.error(REGISTER_DESK, input=arrival)
    assert again["extensions"]["code"] == "CONFLICT"

    triaged = (await nurse.data(TRIAGE, id=visit["id"], input={"level": 2, "vitals": VITALS}))[
        "triageEmergencyVisit"
    ]
    assert triaged["status"] == "TRIAGED" and triaged["triageLevel"] == 2
    assert triaged["triage"]["triagedById"] == str(ed.nurse.id)
    assert triaged["triage"]["triagedByRole"] == "NURSE"
    assert triaged["triage"]["vitals"]["gcs"] == 15
    assert triaged["triage"]["vitals"]["heartRate"] == 118
    assert "emergent" in triaged["triageLevelMeaning"]

    # Re-triage: the new level is current, the first is kept.
    again_triaged = (
        await nurse.data(TRIAGE, id=visit["id"], input={"level": 1, "note": "now hypotensive"})
    )["triageEmergencyVisit"]
    assert again_triaged["triageLevel"] == 1
    assert [t["level"] for t in again_triaged["triageHistory"]] == [2, 1]
    assert [h["action"] for h in again_triaged["history"]] == [
        "registered", "triaged", "retriaged"
    ]  # fmt: skip

    seen = (await doctor.data(START, id=visit["id"]))["startEmergencyTreatment"]
    assert seen["status"] == "IN_TREATMENT" and seen["assignedDoctorId"] == str(ed.doctor.id)
    assert seen["seenAt"] is not None

    # LWBS is for patients not yet seen.
    refused = await nurse.error(LWBS, id=visit["id"])
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    # A transfer names where to; a discharge needs nothing more.
    no_destination = await doctor.error(DISPOSE, id=visit["id"], kind="TRANSFERRED")
    assert no_destination["extensions"]["code"] == "BAD_USER_INPUT"
    done = (
        await doctor.data(DISPOSE, id=visit["id"], kind="DISCHARGED", note="troponin negative")
    )["disposeEmergencyVisit"]
    assert done["status"] == "DISPOSED" and done["dispositionKind"] == "DISCHARGED"
    assert done["disposition"]["note"] == "troponin negative"
    stored = await EmergencyVisit.get(visit["id"])
    assert stored is not None and stored.open_patient_id is None  # may come back another day

    # The patient may arrive again now; the past visit is listed with its level.
    await desk.data(REGISTER_DESK, input=arrival)
    listed = await doctor.data(
        VISITS, filter={"patientId": str(patient.id), "status": ["DISPOSED"], "level": 1}
    )
    assert [e["node"]["id"] for e in listed["emergencyVisits"]["edges"]] == [visit["id"]]


async def test_triage_is_validated_level_vitals_and_times(client_as: Any) -> None:
    ed = await emergency_department()
    patient = await factories.patient()
    nurse = client_as(**ed.claims("nurse"))
    arrived = datetime.now(UTC) - timedelta(minutes=30)
    visit = (
        await nurse.data(
            REGISTER,
            input={
                "patientId": str(patient.id),
                "departmentId": ed.id,
                "arrivalMode": "WALK_IN",
                "chiefComplaint": "Ankle injury",
                "arrivedAt": iso(arrived),
            },
        )
    )["registerEmergencyArrival"]

    bad_level = await nurse.error(TRIAGE, id=visit["id"], input={"level": 6})
    assert bad_level["extensions"]["code"] == "BAD_USER_INPUT"
    assert "level" in bad_level["extensions"]["fields"]

    implausible = {**VITALS, "heartRate": 400, "spo2": 120.0, "gcs": 2, "diastolic": 120}
    bad_vitals = await nurse.error(
        TRIAGE, id=visit["id"], input={"level": 3, "vitals": implausible}
    )
    fields = bad_vitals["extensions"]["fields"]
    assert bad_vitals["extensions"]["code"] == "BAD_USER_INPUT"
    assert {"vitals.heartRate", "vitals.spo2", "vitals.gcs", "vitals.diastolic"} <= set(fields)
    assert "/min" in fields["vitals.heartRate"]  # the vital-signs module's unit and range
    empty = await nurse.error(TRIAGE, id=visit["id"], input={"level": 3, "vitals": {}})
    assert "vitals" in empty["extensions"]["fields"]

    before_arrival = iso(arrived - timedelta(minutes=5))
    early = await nurse.error(
        TRIAGE, id=visit["id"], input={"level": 3, "triagedAt": before_arrival}
    )
    assert "triagedAt" in early["extensions"]["fields"]
    future = iso(datetime.now(UTC) + timedelta(hours=1))
    late = await nurse.error(TRIAGE, id=visit["id"], input={"level": 3, "triagedAt": future})
    assert "triagedAt" in late["extensions"]["fields"]

    # Nothing changed on a refused triage.
    stored = await EmergencyVisit.get(visit["id"])
    assert stored is not None and stored.triage is None and stored.version == 0

    at = iso(arrived + timedelta(minutes=12))
    ok = await nurse.data(TRIAGE, id=visit["id"], input={"level": 4, "triagedAt": at})
    assert ok["triageEmergencyVisit"]["triageLevel"] == 4

    # An arrival in the future is refused too.
    other = await factories.patient()
    ahead = await nurse.error(
        REGISTER,
        input={
            "patientId": str(other.id), "departmentId": ed.id, "arrivalMode": "WALK_IN",
            "chiefComplaint": "Cough", "arrivedAt": future,
        },
    )  # fmt: skip
    assert "arrivedAt" in ahead["extensions"]["fields"]


async def test_an_unknown_patient_arrives_under_a_placeholder_identity(client_as: Any) -> None:
    ed = await emergency_department()
    desk = client_as(**ed.claims("admin_staff"))
    visit = (
        await desk.data(
            REGISTER_DESK,
            input={
                "unidentified": {"sex": "MALE", "estimatedAge": 40},
                "departmentId": ed.id,
                "arrivalMode": "POLICE",
                "chiefComplaint": "Found unconscious in the street",
            },
        )
    )["registerEmergencyArrival"]
    assert visit["unidentified"] is True
    placeholder = await Patient.get(visit["patientId"])
    assert placeholder is not None and placeholder.first_name == "Unknown"
    assert placeholder.last_name.startswith("ED-")
    assert placeholder.date_of_birth.year == datetime.now(UTC).year - 40

    # An ED nurse may register known patients, not create patient records.
    nurse = client_as(**ed.claims("nurse"))
    refused = await nurse.error(
        REGISTER_DESK,
        input={
            "unidentified": {}, "departmentId": ed.id, "arrivalMode": "AMBULANCE",
            "chiefComplaint": "Collapse",
        },
    )  # fmt: skip
    assert refused["extensions"]["code"] == "FORBIDDEN"


async def test_left_without_being_seen_and_not_an_emergency_department(client_as: Any) -> None:
    ed = await emergency_department()
    patient = await factories.patient()
    desk = client_as(**ed.claims("admin_staff"))
    arrival = {
        "patientId": str(patient.id), "departmentId": ed.id, "arrivalMode": "WALK_IN",
        "chiefComplaint": "Sore throat",
    }  # fmt: skip
    visit = (await desk.data(REGISTER_DESK, input=arrival))["registerEmergencyArrival"]
    gone = (await desk.data(LWBS, id=visit["id"], note="not in the waiting room at 14:05"))[
        "leftWithoutBeingSeen"
    ]
    assert gone["status"] == "DISPOSED" and gone["dispositionKind"] == "LEFT_WITHOUT_BEING_SEEN"
    twice = await desk.error(LWBS, id=visit["id"])
    assert twice["extensions"]["code"] == "BAD_USER_INPUT"

    clinic = await factories.department(code="CARD")
    admin = client_as(roles=["admin"])
    wrong = await admin.error(REGISTER_DESK, input={**arrival, "departmentId": str(clinic.id)})
    assert "departmentId" in wrong["extensions"]["fields"]


async def test_a_patient_reads_their_own_visit_without_the_staff_steps(client_as: Any) -> None:
    ed = await emergency_department()
    patient = await factories.patient()
    nurse = client_as(**ed.claims("nurse"))
    visit = (
        await nurse.data(
            REGISTER,
            input={
                "patientId": str(patient.id),
                "departmentId": ed.id,
                "arrivalMode": "WALK_IN",
                "chiefComplaint": "Burn to the hand",
            },
        )
    )["registerEmergencyArrival"]
    await nurse.data(TRIAGE, id=visit["id"], input={"level": 4, "vitals": {"painScore": 6}})
    me = client_as(roles=["patient"], pid=str(patient.id))
    body = await me(VISIT, id=visit["id"])
    mine = body["data"]["emergencyVisit"]
    assert mine["chiefComplaint"] == "Burn to the hand" and mine["triageLevel"] == 4
    assert mine["history"] is None  # who took each step is the hospital's
    other = client_as(roles=["patient"], pid=str((await factories.patient()).id))
    assert (await other(VISIT, id=visit["id"]))["data"]["emergencyVisit"] is None
