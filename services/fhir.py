"""FHIR R4 resources from SHMS rows, as a viewer may read them.

Each mapper reads a row through a ``View``: a field the viewer may not read (or sees only
masked) reads as ``None`` and is left out of the resource, and the view remembers which
fields were read and which withheld, for the audit trail. A resource whose mandatory element
the viewer may not read is not produced at all. No access decision is made here: the caller
(``schema.fhir_export``) builds the views from the policy or from a share.

The bundle is validated with ``fhir.resources`` (its R4B models: the 8.x package ships R5,
R4B and STU3; R4B is R4 with corrections, identical for every resource used here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from models.base import utcnow

Resource = dict[str, Any]

FHIR_VERSION = "4.0.1"
MRN_SYSTEM = "urn:shms:mrn"
NATIONAL_ID_SYSTEM = "urn:shms:national-id"
MEMBER_ID_SYSTEM = "urn:shms:insurance-member-id"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
LAB_TEST_SYSTEM = "urn:shms:lab-test"
ANALYTE_SYSTEM = "urn:shms:analyte"

RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Observation",
    "DiagnosticReport",
    "Procedure",
    "Coverage",
)
"""What an export may hold (and what a share may name)."""
CLINICAL_TYPES = frozenset(RESOURCE_TYPES) - {"Patient", "Encounter", "Coverage"}


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class View:
    """One row as its viewer may read it (``readable``: GraphQL field names, None: all)."""

    kind: str
    row: Any
    readable: frozenset[str] | None = None
    used: set[str] = field(default_factory=set)
    withheld: set[str] = field(default_factory=set)

    def may(self, name: str) -> bool:
        return self.readable is None or name in self.readable

    def get(self, name: str, attribute: str | None = None) -> Any:
        """The field's value, or None (recorded as withheld) when the viewer may not read it."""
        if not self.may(name):
            self.withheld.add(name)
            return None
        self.used.add(name)
        return getattr(self.row, attribute or camel_to_snake(name), None)

    @property
    def id(self) -> str:
        return str(self.row.id)


def instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def day(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def ref(kind: str, id: Any) -> dict[str, str] | None:
    return {"reference": f"{kind}/{id}"} if id is not None else None


def text(value: Any) -> dict[str, str] | None:
    return {"text": str(value)} if value not in (None, "") else None


def prune(value: Any) -> Any:
    """Drop empty elements: FHIR forbids empty strings, arrays and objects."""
    if isinstance(value, dict):
        out = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        items = [prune(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    return value


def _enum(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


# -- Patient and what the patient row holds --------------------------------------------------


def patient(v: View) -> list[Resource]:
    row = v.row
    identifiers = [
        {
            "type": {"coding": [{"system": IDENTIFIER_TYPE, "code": "MR"}]},
            "system": MRN_SYSTEM,
            "value": v.id,
        }
    ]
    national = v.get("nationalId")
    if national:
        identifiers.append(
            {
                "type": {"coding": [{"system": IDENTIFIER_TYPE, "code": "NI"}]},
                "system": NATIONAL_ID_SYSTEM,
                "value": national,
            }
        )
    first, last = v.get("firstName"), v.get("lastName")
    contact = v.get("contact")
    telecom, addresses = [], []
    if contact is not None:
        if contact.phone:
            telecom.append({"system": "phone", "value": contact.phone})
        if contact.email:
            telecom.append({"system": "email", "value": str(contact.email)})
        if contact.address is not None:
            a = contact.address
            addresses.append(
                {
                    "line": [a.line1, *([a.line2] if a.line2 else [])],
                    "city": a.city,
                    "postalCode": a.postal_code,
                    "country": a.country,
                }
            )
    emergency = v.get("emergencyContact")
    contacts = []
    if emergency is not None:
        contacts.append(
            {
                "relationship": [{"text": emergency.relationship}],
                "name": {"text": emergency.name},
                "telecom": [{"system": "phone", "value": emergency.phone}],
            }
        )
    doctor = v.get("primaryDoctorId")
    resource = {
        "resourceType": "Patient",
        "id": v.id,
        "identifier": identifiers,
        "name": [{"family": last, "given": [first] if first else []}] if first or last else [],
        "gender": _enum(v.get("sex")),
        "birthDate": day(v.get("dateOfBirth")),
        "telecom": telecom,
        "address": addresses,
        "contact": contacts,
        "generalPractitioner": [ref("Practitioner", doctor)] if doctor else [],
    }
    out: list[Resource] = [resource]
    for i, allergy in enumerate(v.get("allergies") or []):
        severity = _enum(allergy.severity)
        out.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": f"allergy-{row.id}-{i}",
                "patient": ref("Patient", row.id),
                "code": text(allergy.substance),
                "criticality": "high" if severity == "life_threatening" else "low",
                "reaction": [
                    {
                        "manifestation": [text(allergy.reaction or "unspecified")],
                        "severity": "severe" if severity == "life_threatening" else severity,
                    }
                ],
            }
        )
    for i, entry in enumerate(v.get("medicalHistory") or []):
        status = "resolved" if entry.resolved else "active"
        out.append(
            {
                "resourceType": "Condition",
                "id": f"history-{row.id}-{i}",
                "subject": ref("Patient", row.id),
                "category": [_coding(CONDITION_CATEGORY, "problem-list-item")],
                "clinicalStatus": _coding(CONDITION_CLINICAL, status),
                "code": text(entry.condition),
                "onsetDateTime": day(entry.diagnosed_on),
                "note": [{"text": entry.notes}] if entry.notes else [],
            }
        )
    return out


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


# -- Encounters --------------------------------------------------------------------------------


def _encounter(
    v: View,
    id: str,
    status: str,
    cls: str,
    start: Any,
    end: Any,
    reason: Any,
    doctor: Any,
    department: Any,
) -> Resource:
    return {
        "resourceType": "Encounter",
        "id": id,
        "status": status,
        "class": {"system": ACT_CODE, "code": cls},
        "subject": ref("Patient", v.row.patient_id),
        "period": {"start": instant(start), "end": instant(end)},
        "reasonCode": [text(reason)] if reason else [],
        "participant": [{"individual": ref("Practitioner", doctor)}] if doctor else [],
        "serviceProvider": ref("Organization", department),
    }


APPOINTMENT_STATUS = {
    "scheduled": "planned",
    "checked_in": "arrived",
    "completed": "finished",
    "cancelled": "cancelled",
    "no_show": "cancelled",
}
VISIT_STATUS = {
    "waiting": "arrived",
    "called": "arrived",
    "in_consultation": "in-progress",
    "completed": "finished",
    "no_show": "cancelled",
    "left": "cancelled",
}
ED_STATUS = {
    "waiting": "arrived",
    "triaged": "triaged",
    "in_treatment": "in-progress",
    "disposed": "finished",
}


def appointment(v: View) -> list[Resource]:
    return [
        _encounter(
            v,
            f"appointment-{v.id}",
            APPOINTMENT_STATUS.get(_enum(v.get("status")) or "", "unknown"),
            "AMB",
            v.get("startAt"),
            v.get("endAt"),
            v.get("reason"),
            v.get("doctorId"),
            v.get("departmentId"),
        )
    ]


def outpatient_visit(v: View) -> list[Resource]:
    return [
        _encounter(
            v,
            f"visit-{v.id}",
            VISIT_STATUS.get(_enum(v.get("status")) or "", "unknown"),
            "AMB",
            v.get("checkedInAt"),
            v.get("endedAt"),
            v.get("reason"),
            v.get("doctorId"),
            v.get("departmentId"),
        )
    ]


def admission(v: View) -> list[Resource]:
    status = _enum(v.get("status"))
    encounter = _encounter(
        v,
        f"admission-{v.id}",
        {"active": "in-progress", "discharged": "finished"}.get(status or "", "unknown"),
        "IMP",
        v.get("admittedAt"),
        v.get("dischargedAt"),
        v.get("reason"),
        v.get("attendingDoctorId"),
        v.get("departmentId"),
    )
    out = [encounter]
    diagnosis = v.get("diagnosis")
    if diagnosis:
        condition_id = f"admission-diagnosis-{v.id}"
        encounter["diagnosis"] = [{"condition": ref("Condition", condition_id)}]
        out.append(
            {
                "resourceType": "Condition",
                "id": condition_id,
                "subject": ref("Patient", v.row.patient_id),
                "encounter": ref("Encounter", f"admission-{v.id}"),
                "category": [_coding(CONDITION_CATEGORY, "encounter-diagnosis")],
                "code": text(diagnosis),
                "recordedDate": instant(v.get("admittedAt")),
            }
        )
    return out


def emergency_visit(v: View) -> list[Resource]:
    status = _enum(v.get("status")) or ""
    return [
        _encounter(
            v,
            f"emergency-{v.id}",
            ED_STATUS.get(status, "unknown"),
            "EMER",
            v.get("arrivedAt"),
            v.get("statusAt") if status == "disposed" else None,
            v.get("chiefComplaint"),
            v.get("assignedDoctorId"),
            v.get("departmentId"),
        )
    ]


# -- Conditions, procedures, medication ------------------------------------------------------

PLAN_CLINICAL_STATUS = {
    "draft": "active",
    "active": "active",
    "on_hold": "active",
    "completed": "resolved",
    "cancelled": "inactive",
}


def treatment_plan(v: View) -> list[Resource]:
    diagnosis = v.get("diagnosis")
    if diagnosis is None:
        return []
    code: dict[str, Any] = {"text": diagnosis.description}
    if diagnosis.code:
        code["coding"] = [
            {"system": ICD10, "code": diagnosis.code, "display": diagnosis.description}
        ]
    return [
        {
            "resourceType": "Condition",
            "id": f"plan-diagnosis-{v.id}",
            "subject": ref("Patient", v.row.patient_id),
            "category": [_coding(CONDITION_CATEGORY, "encounter-diagnosis")],
            "clinicalStatus": _coding(
                CONDITION_CLINICAL, PLAN_CLINICAL_STATUS.get(_enum(v.get("status")) or "", "active")
            ),
            "code": code,
            "onsetDateTime": instant(v.get("startDate")),
            "abatementDateTime": instant(v.get("endDate")),
            "recordedDate": instant(v.get("createdAt")),
            "asserter": ref("Practitioner", v.get("doctorId")),
            "note": [{"text": v.get("notes")}] if v.get("notes") else [],
        }
    ]


def treatment(v: View) -> list[Resource]:
    procedure = v.get("procedure")
    if not procedure:
        return []
    performer = v.get("performedById")
    plan = v.get("planId")
    return [
        {
            "resourceType": "Procedure",
            "id": f"treatment-{v.id}",
            "status": "completed",
            "subject": ref("Patient", v.row.patient_id),
            "code": text(procedure),
            "performedDateTime": instant(v.get("performedAt")),
            "performer": [{"actor": ref("Practitioner", performer)}] if performer else [],
            "reasonReference": [ref("Condition", f"plan-diagnosis-{plan}")] if plan else [],
            "outcome": text(v.get("outcome")),
            "note": [{"text": v.get("notes")}] if v.get("notes") else [],
        }
    ]


def surgical_record(v: View) -> list[Resource]:
    codes = v.get("procedureCodes")
    if not codes:
        return []
    people = [v.get("surgeonId"), v.get("anaesthetistId")]
    return [
        {
            "resourceType": "Procedure",
            "id": f"surgery-{v.id}",
            "status": "completed" if v.get("completedAt") else "in-progress",
            "subject": ref("Patient", v.row.patient_id),
            "code": {"coding": [{"code": c} for c in codes], "text": ", ".join(codes)},
            "performedPeriod": {
                "start": instant(v.get("inTheatreAt")),
                "end": instant(v.get("outOfTheatreAt")),
            },
            "performer": [{"actor": ref("Practitioner", p)} for p in people if p],
            "complication": [text(v.get("complications"))] if v.get("complications") else [],
            "note": [{"text": v.get("notes")}] if v.get("notes") else [],
        }
    ]


PRESCRIPTION_STATUS = {
    "prescribed": "active",
    "dispensed": "active",
    "picked_up": "completed",
    "cancelled": "cancelled",
}
ORDER_STATUS = {
    "active": "active",
    "held": "on-hold",
    "completed": "completed",
    "cancelled": "cancelled",
}


def prescription(v: View) -> list[Resource]:
    drug = v.get("drug")
    if not drug:
        return []
    dose, route, frequency = v.get("dose"), _enum(v.get("route")), v.get("frequency")
    days = v.get("durationDays")
    return [
        {
            "resourceType": "MedicationRequest",
            "id": f"prescription-{v.id}",
            "status": PRESCRIPTION_STATUS.get(_enum(v.get("status")) or "", "unknown"),
            "intent": "order",
            "medicationCodeableConcept": text(drug),
            "subject": ref("Patient", v.row.patient_id),
            "authoredOn": instant(v.get("createdAt")),
            "requester": ref("Practitioner", v.get("prescriberId")),
            "dosageInstruction": [
                {
                    "text": " ".join(str(p) for p in (dose, route, frequency) if p),
                    "route": text(route),
                    "patientInstruction": v.get("instructions"),
                }
            ],
            "dispenseRequest": {
                "numberOfRepeatsAllowed": v.get("refills"),
                "expectedSupplyDuration": (
                    {"value": days, "unit": "days", "system": UCUM, "code": "d"} if days else None
                ),
            },
        }
    ]


def doctor_order(v: View) -> list[Resource]:
    if _enum(v.get("kind")) != "medication":
        return []
    details = v.get("medication")
    if details is None:
        return []
    admission_id = v.get("admissionId")
    return [
        {
            "resourceType": "MedicationRequest",
            "id": f"order-{v.id}",
            "status": ORDER_STATUS.get(_enum(v.get("status")) or "", "unknown"),
            "intent": "order",
            "medicationCodeableConcept": text(details.drug),
            "subject": ref("Patient", v.row.patient_id),
            "encounter": ref("Encounter", f"admission-{admission_id}") if admission_id else None,
            "authoredOn": instant(v.get("createdAt")),
            "requester": ref("Practitioner", v.get("orderedById")),
            "dosageInstruction": [
                {
                    "text": " ".join(
                        str(p)
                        for p in (details.dose, details.unit, details.route, details.frequency)
                        if p
                    ),
                    "route": text(_enum(details.route)),
                    "doseAndRate": [
                        {"doseQuantity": {"value": details.dose, "unit": details.unit}}
                    ],
                }
            ],
        }
    ]


# -- Observations and reports ------------------------------------------------------------------

VITALS: tuple[tuple[str, str, str, str], ...] = (
    ("temperature", "8310-5", "Body temperature", "Cel"),
    ("pulse", "8867-4", "Heart rate", "/min"),
    ("respiratoryRate", "9279-1", "Respiratory rate", "/min"),
    ("spo2", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    ("height", "8302-2", "Body height", "cm"),
    ("weight", "29463-7", "Body weight", "kg"),
    ("bmi", "39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
    (
        "painScore",
        "72514-3",
        "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
        "{score}",
    ),
)
"""(field, LOINC code, LOINC display, UCUM unit) of each single vital sign."""
BLOOD_PRESSURE = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")


def _quantity(value: Any, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def vital_signs(v: View) -> list[Resource]:
    when = v.get("recordedAt")
    status = "entered-in-error" if _enum(v.get("status")) == "entered_in_error" else "final"
    visit, admission_id = v.get("visitId"), v.get("admissionId")
    encounter = (
        ref("Encounter", f"visit-{visit}")
        if visit
        else ref("Encounter", f"admission-{admission_id}")
        if admission_id
        else None
    )
    base = {
        "resourceType": "Observation",
        "status": status,
        "category": [_coding(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
        "subject": ref("Patient", v.row.patient_id),
        "encounter": encounter,
        "effectiveDateTime": instant(when),
        "performer": [ref("Practitioner", v.get("recordedById"))],
    }
    out: list[Resource] = []
    for name, code, display, unit in VITALS:
        value = v.get(name)
        if value is not None:
            out.append(
                {
                    **base,
                    "id": f"vitals-{v.id}-{code}",
                    "code": _coding(LOINC, code, display),
                    "valueQuantity": _quantity(value, unit),
                }
            )
    systolic, diastolic = v.get("systolic"), v.get("diastolic")
    if systolic is not None or diastolic is not None:
        components = [
            {"code": _coding(LOINC, c, d), "valueQuantity": _quantity(x, "mm[Hg]")}
            for (c, d), x in ((SYSTOLIC, systolic), (DIASTOLIC, diastolic))
            if x is not None
        ]
        out.append(
            {
                **base,
                "id": f"vitals-{v.id}-{BLOOD_PRESSURE[0]}",
                "code": _coding(LOINC, *BLOOD_PRESSURE),
                "component": components,
            }
        )
    return out


FLAG_CODES = {
    "normal": "N",
    "low": "L",
    "high": "H",
    "critical_low": "LL",
    "critical_high": "HH",
}


def lab_result(v: View) -> list[Resource]:
    if v.get("current") is False:
        return []  # a superseded version: its correction is exported instead
    name, value = v.get("analyteName"), v.get("value")
    if name is None or value is None:
        return []
    unit = v.get("unit") or ""
    low, high = v.get("referenceLow"), v.get("referenceHigh")
    flag = _enum(v.get("flag"))
    return [
        {
            "resourceType": "Observation",
            "id": f"lab-{v.id}",
            "status": "final" if _enum(v.get("status")) == "verified" else "preliminary",
            "category": [_coding(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
            "code": {
                "coding": [
                    {"system": ANALYTE_SYSTEM, "code": v.get("analyteCode"), "display": name}
                ],
                "text": name,
            },
            "subject": ref("Patient", v.row.patient_id),
            "effectiveDateTime": instant(v.get("enteredAt")),
            "issued": instant(v.get("verifiedAt")),
            "valueQuantity": {"value": value, "unit": unit},
            "interpretation": (
                [_coding(INTERPRETATION, FLAG_CODES[flag])] if flag in FLAG_CODES else []
            ),
            "referenceRange": (
                [
                    {
                        "low": {"value": low, "unit": unit} if low is not None else None,
                        "high": {"value": high, "unit": unit} if high is not None else None,
                        "text": v.get("referenceRange"),
                    }
                ]
                if low is not None or high is not None
                else []
            ),
            "note": [{"text": v.get("comment")}] if v.get("comment") else [],
        }
    ]


LAB_REPORT_STATUS = {
    "ordered": "registered",
    "collected": "registered",
    "received": "registered",
    "resulted": "preliminary",
    "verified": "final",
    "cancelled": "cancelled",
}


def lab_order(v: View, results: Iterable[str] = ()) -> list[Resource]:
    tests = v.get("tests")
    if not tests:
        return []
    visit, admission_id = v.get("visitId"), v.get("admissionId")
    return [
        {
            "resourceType": "DiagnosticReport",
            "id": f"lab-order-{v.id}",
            "status": LAB_REPORT_STATUS.get(_enum(v.get("status")) or "", "unknown"),
            "category": [_coding(DIAGNOSTIC_SERVICE, "LAB", "Laboratory")],
            "code": {
                "coding": [
                    {"system": LAB_TEST_SYSTEM, "code": t.code, "display": t.name} for t in tests
                ],
                "text": ", ".join(t.name for t in tests),
            },
            "subject": ref("Patient", v.row.patient_id),
            "encounter": (
                ref("Encounter", f"visit-{visit}")
                if visit
                else ref("Encounter", f"admission-{admission_id}")
                if admission_id
                else None
            ),
            "effectiveDateTime": instant(v.get("collectedAt")),
            "issued": instant(v.get("verifiedAt") or v.get("resultedAt")),
            "result": [ref("Observation", r) for r in results],
        }
    ]


def imaging_report(v: View) -> list[Resource]:
    kind = _enum(v.get("kind"))
    if kind is None:
        return []
    if kind == "addendum":
        conclusion = v.get("text")
    else:
        findings, impression = v.get("findings"), v.get("impression")
        conclusion = "\n".join(
            part for part in (f"Findings: {findings}" if findings else None,
                              f"Impression: {impression}" if impression else None) if part
        )  # fmt: skip
    return [
        {
            "resourceType": "DiagnosticReport",
            "id": f"imaging-report-{v.id}",
            "status": "appended" if kind == "addendum" else "final",
            "category": [_coding(DIAGNOSTIC_SERVICE, "RAD", "Radiology")],
            "code": _coding(LOINC, "18748-4", "Diagnostic imaging study"),
            "subject": ref("Patient", v.row.patient_id),
            "issued": instant(v.get("signedAt")),
            "resultsInterpreter": [ref("Practitioner", v.get("authorId"))],
            "conclusion": conclusion or None,
        }
    ]


def insurance_policy(v: View) -> list[Resource]:
    payer = v.get("payerId")
    if payer is None:
        return []
    member, plan, group = v.get("memberId"), v.get("planName"), v.get("groupNumber")
    classes = [
        {"type": _coding(COVERAGE_CLASS, "plan"), "value": plan, "name": plan} if plan else None,
        {"type": _coding(COVERAGE_CLASS, "group"), "value": group} if group else None,
    ]
    return [
        {
            "resourceType": "Coverage",
            "id": f"coverage-{v.id}",
            "status": "active" if _enum(v.get("status")) == "active" else "cancelled",
            "identifier": [{"system": MEMBER_ID_SYSTEM, "value": member}] if member else [],
            "subscriberId": member,
            "beneficiary": ref("Patient", v.row.patient_id),
            "payor": [ref("Organization", payer)],
            "period": {"start": instant(v.get("validFrom")), "end": instant(v.get("validUntil"))},
            "class": [c for c in classes if c],
        }
    ]


Mapper = Callable[[View], list[Resource]]


def bundle(resources: Iterable[Resource], base: str = "urn:shms:fhir") -> dict[str, Any]:
    """A ``collection`` Bundle of ``resources``, validated by ``fhir.resources`` (a mapping
    error raises here rather than reach a receiver), as plain JSON."""
    entries = []
    for resource in resources:
        clean = prune(resource)
        entries.append(
            {"fullUrl": f"{base}/{clean['resourceType']}/{clean['id']}", "resource": clean}
        )
    document = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(utcnow()),
        "meta": {"tag": [{"system": "urn:shms:fhir-version", "code": FHIR_VERSION}]},
        "entry": entries,
    }
    return validate(document)


def validate(document: dict[str, Any]) -> dict[str, Any]:
    """The bundle as ``fhir.resources`` reads it back (``ValidationError`` if it is not R4)."""
    checked = Bundle.model_validate(document)
    out: dict[str, Any] = checked.model_dump(mode="json", exclude_none=True)
    return out
