"""``$everything`` for one patient: which rows and fields reach the FHIR bundle, and the audit.

Two lenses decide it, and nothing else does:

- the caller's policy (``PolicyLens``): the same decisions the schema applies to GraphQL
  (``AccessControl``): the patient row must be visible (else ``FORBIDDEN``, audited), every
  other row passes the row check of its kind, and a field is read only when its group is
  fully readable (a masked group, such as a national id for the front desk, is left out);
- a share (``ShareLens``): a receiver authenticated as the shared-with service client reads
  the shared resource types of that patient, whole, while the share is in force.

Either way every row read is recorded in the request's audit trail with the fields read and
those withheld, exactly as a GraphQL read of the same rows is (emergency shares flagged like
break-the-glass), and the caller flushes the trail before answering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from beanie.odm.enums import SortDirection
from bson import ObjectId

from auth.access import AccessControl, patient_of
from auth.audit import AuditTrail
from auth.policy import REGISTRY, Access, Kind
from auth.roles import Role
from config import Settings
from errors import Forbidden, NotFound
from models.audit import AuditAction
from models.patients import Patient
from models.sharing import RecordShare
from services import fhir, sharing
from services.fhir import Mapper, Resource, View
from services.safe_harbor import SafeHarbor

MAX_ROWS_PER_KIND = 5000
EXPORT_COST = 200
"""Cost points of one export (GraphQL field or REST route alike): it reads every module's
collections for the patient, so it is charged like a large page, not like one scalar."""
"""A bound on each kind's rows in one export (a patient's record is far smaller)."""

SOURCES: tuple[tuple[Kind, Mapper | None, frozenset[str]], ...] = (
    ("Appointment", fhir.appointment, frozenset({"Encounter"})),
    ("OutpatientVisit", fhir.outpatient_visit, frozenset({"Encounter"})),
    ("Admission", fhir.admission, frozenset({"Encounter", "Condition"})),
    ("EmergencyVisit", fhir.emergency_visit, frozenset({"Encounter"})),
    ("TreatmentPlan", fhir.treatment_plan, frozenset({"Condition"})),
    ("Treatment", fhir.treatment, frozenset({"Procedure"})),
    ("SurgicalRecord", fhir.surgical_record, frozenset({"Procedure"})),
    ("Prescription", fhir.prescription, frozenset({"MedicationRequest"})),
    ("DoctorOrder", fhir.doctor_order, frozenset({"MedicationRequest"})),
    ("VitalSigns", fhir.vital_signs, frozenset({"Observation"})),
    ("LabResult", fhir.lab_result, frozenset({"Observation"})),
    ("LabOrder", None, frozenset({"DiagnosticReport"})),  # needs its results: see _lab_orders
    ("ImagingReport", fhir.imaging_report, frozenset({"DiagnosticReport"})),
    ("InsurancePolicy", fhir.insurance_policy, frozenset({"Coverage"})),
)
"""Each kind exported, its mapper, and the resource types it can produce."""
FEEDS: dict[tuple[Kind, str], str] = {
    ("Patient", "allergies"): "AllergyIntolerance",
    ("Patient", "medicalHistory"): "Condition",
    ("Admission", "diagnosis"): "Condition",
}
"""Fields that feed a resource type other than their row's own: not read when that type is
not wanted (so the audit trail lists only what was sent)."""


class Lens(Protocol):
    types: frozenset[str]

    async def views(self, kind: Kind, rows: Sequence[Any]) -> list[View]: ...

    def audit(self, view: View) -> None: ...


def _unwanted(kind: Kind, types: frozenset[str]) -> set[str]:
    return {name for (k, name), t in FEEDS.items() if k == kind and t not in types}


@dataclass
class PolicyLens:
    access: AccessControl
    types: frozenset[str]

    async def views(self, kind: Kind, rows: Sequence[Any]) -> list[View]:
        if not rows or not self.access.may_read_kind(kind):
            return []
        declaration = REGISTRY[kind]
        unwanted = _unwanted(kind, self.types)
        out = []
        for row, visible in zip(rows, await self.access.visible(kind, rows), strict=True):
            if not visible:
                continue
            readable: set[str] = set()
            for group in declaration.groups:
                if await self.access.field_access(kind, group.name, row) == Access.FULL:
                    readable.update(group.fields)
            out.append(View(kind, row, frozenset(readable - unwanted)))
        return out

    def audit(self, view: View) -> None:
        patient_id = patient_of(view.kind, view.row)
        glass = self.access.principal.glass.get(patient_id) if patient_id else None
        self.access.audit.read(
            view.kind,
            view.row.id,
            patient_id,
            sorted(view.used),
            sorted(view.withheld - view.used),
            glass,
        )


@dataclass
class ShareLens:
    shares: list[RecordShare]
    trail: AuditTrail
    types: frozenset[str]

    async def views(self, kind: Kind, rows: Sequence[Any]) -> list[View]:
        every = {name for group in REGISTRY[kind].groups for name in group.fields}
        readable = frozenset(every - _unwanted(kind, self.types))
        return [View(kind, row, readable) for row in rows]

    def audit(self, view: View) -> None:
        emergency = [s for s in self.shares if s.emergency_reason]
        reason = (
            f"emergency share {emergency[0].id}: {emergency[0].emergency_reason}"
            if emergency
            else None
        )
        self.trail.read(
            view.kind,
            view.row.id,
            patient_of(view.kind, view.row),
            sorted(view.used),
            sorted(view.withheld - view.used),
            reason,
        )


async def _rows(kind: Kind, patient_id: ObjectId) -> list[Any]:
    model = REGISTRY[kind].model
    assert model is not None
    found: list[Any] = (
        await model.find({"patient_id": patient_id})
        .sort([("_id", SortDirection.ASCENDING)])
        .limit(MAX_ROWS_PER_KIND)
        .to_list()
    )
    return found


def _emit(lens: Lens, views: Iterable[View], resources: list[Resource], mapper: Mapper) -> None:
    for view in views:
        made = [r for r in mapper(view) if r["resourceType"] in lens.types]
        resources.extend(made)
        lens.audit(view)


async def collect(lens: Lens, patient: Patient) -> list[Resource]:
    """Every resource of the patient's record the lens lets through, audited as read."""
    resources: list[Resource] = []
    patient_views = await lens.views("Patient", [patient])
    _emit(lens, patient_views, resources, fhir.patient)
    results_of: dict[Any, list[str]] = {}
    for kind, mapper, produces in SOURCES:
        if not produces & lens.types:
            continue
        assert patient.id is not None
        rows = await _rows(kind, patient.id)
        views = await lens.views(kind, rows)
        if kind == "LabResult":
            for view in views:
                made = [r for r in fhir.lab_result(view) if r["resourceType"] in lens.types]
                if made:
                    results_of.setdefault(view.row.order_id, []).extend(r["id"] for r in made)
                resources.extend(made)
                lens.audit(view)
        elif kind == "LabOrder":
            for view in views:
                made = fhir.lab_order(view, results_of.get(view.row.id, ()))
                resources.extend(made)
                lens.audit(view)
        elif mapper is not None:
            _emit(lens, views, resources, mapper)
    return resources


def wanted_types(types: Iterable[str] | None) -> frozenset[str]:
    if not types:
        return frozenset(fhir.RESOURCE_TYPES)
    return frozenset(types) & frozenset(fhir.RESOURCE_TYPES) | {"Patient"}


async def _share_lens(
    access: AccessControl, patient_id: ObjectId, types: frozenset[str]
) -> ShareLens | None:
    """For a service client the record was shared with: the shares in force (``FORBIDDEN``
    when every one has lapsed, been revoked, or lost its consent); None when it has none."""
    principal = access.principal
    if principal.client_id is None or not principal.has(Role.SERVICE):
        return None
    shares = await sharing.for_recipient(principal.client_id, patient_id)
    if not shares:
        return None
    lapsed = {str(s.id): await sharing.effective(s) for s in shares}
    live = [s for s in shares if lapsed[str(s.id)] is None]
    if not live:
        reasons = sorted({r for r in lapsed.values() if r})
        access.audit.denied(
            "Patient", patient_id, patient_id, AuditAction.READ, f"share {', '.join(reasons)}"
        )
        raise Forbidden(f"The share of this record is {' and '.join(reasons)}")
    identified = [s for s in live if not s.deidentified]
    chosen = identified or live
    shared = frozenset(t for s in chosen for t in s.resource_types)
    return ShareLens(chosen, access.audit, shared & types)


async def everything(
    access: AccessControl,
    settings: Settings,
    patient_id: ObjectId,
    deidentify: bool = False,
    types: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The patient's record as a validated FHIR R4 Bundle (``collection``), as the caller may
    read it; de-identified (Safe Harbor) when asked, or when the share says so."""
    wanted = wanted_types(types)
    shared = await _share_lens(access, patient_id, wanted)
    lens: Lens
    if shared is None:
        access.require_kind("Patient", patient_id, patient_id)
        lens = PolicyLens(access, wanted)
    else:
        lens = shared
        deidentify = deidentify or all(s.deidentified for s in shared.shares)
    patient = await access.loaders.patient_by_id.load(patient_id)
    if patient is None:
        raise NotFound("Patient", str(patient_id))
    if isinstance(lens, PolicyLens) and not await access.can_see("Patient", patient):
        access.audit_denied("Patient", patient)
        raise Forbidden("Not allowed to read this Patient")
    document = fhir.bundle(await collect(lens, patient))
    if deidentify:
        document = SafeHarbor(settings.shms_deidentify_secret, str(patient_id)).bundle(document)
    return document
