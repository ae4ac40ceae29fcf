"""Writing the demo facility into the (already Beanie-initialised) database, batch by batch."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TypeVar

from beanie import Document, PydanticObjectId
from tqdm import tqdm

import db
from demo import calendars
from demo.accounts import seed_accounts
from demo.emergency import seed_emergency
from demo.facility import Facility, build_facility
from demo.insurance import seed_insurance
from demo.inventory import seed_inventory
from demo.laboratory import seed_laboratory
from demo.medication import seed_medication
from demo.orders import seed_orders
from demo.outpatient import seed_outpatient
from demo.pharmacy import seed_pharmacy
from demo.population import Batch, Population
from demo.privacy import seed_privacy
from demo.radiology import seed_radiology
from demo.theatre import seed_theatre
from demo.vitals_notes import seed_vitals_notes
from demo.wards import seed_wards
from models import (
    AdminStaff,
    Appointment,
    AppointmentType,
    BillingAccount,
    Department,
    Doctor,
    MedicalEquipment,
    Nurse,
    Patient,
    Prescription,
    Reservation,
    Treatment,
    TreatmentPlan,
    WorkingHours,
)
from models.admissions import Admission
from models.consent import Consent
from models.drugs import Drug
from models.emergency import EmergencyVisit
from models.insurance import Claim, InsurancePolicy, Payer
from models.inventory import (
    InventoryAlert,
    InventoryMovement,
    Store,
    SupplyItem,
    SupplyLevel,
    SupplyTransfer,
)
from models.laboratory import AccessionCounter, LabOrder, LabResult, LabSample, LabTest
from models.medication import MedicationAdministration
from models.notes import ClinicalNote
from models.nursing import NursingCarePlan, NursingTask
from models.orders import DoctorOrder
from models.outpatient import OutpatientQueueNumber, OutpatientVisit
from models.pharmacy import Dispense, StockBatch, StockMovement
from models.radiology import (
    ImagingAccessionCounter,
    ImagingOrder,
    ImagingReport,
    ImagingReportDraft,
    ImagingStudy,
)
from models.scheduling import ACTIVE_APPOINTMENT_STATUSES, grid_slots, held_resources
from models.sharing import RecordShare
from models.theatre import OperatingTheatre, SurgeryBooking, SurgicalRecord
from models.vitals import VitalSigns
from models.wards import Bed, Ward
from services import care

D = TypeVar("D", bound=Document)

BATCH_SIZE = 1000
"""Patients built and inserted together: memory stays bounded by this, whatever the seed size."""

MODULE_MODELS: dict[str, type[Document]] = {
    "outpatient_visits": OutpatientVisit,
    "outpatient_queue_numbers": OutpatientQueueNumber,
    "vital_signs": VitalSigns,
    "clinical_notes": ClinicalNote,
    "lab_tests": LabTest,
    "lab_orders": LabOrder,
    "lab_samples": LabSample,
    "lab_results": LabResult,
    "lab_accession_counters": AccessionCounter,
    "imaging_orders": ImagingOrder,
    "imaging_studies": ImagingStudy,
    "imaging_report_drafts": ImagingReportDraft,
    "imaging_reports": ImagingReport,
    "imaging_accession_counters": ImagingAccessionCounter,
    "drugs": Drug,
    "stock_batches": StockBatch,
    "dispenses": Dispense,
    "stock_movements": StockMovement,
    "operating_theatres": OperatingTheatre,
    "surgery_bookings": SurgeryBooking,
    "surgical_records": SurgicalRecord,
    "emergency_visits": EmergencyVisit,
    "doctor_orders": DoctorOrder,
    "nursing_care_plans": NursingCarePlan,
    "nursing_tasks": NursingTask,
    "medication_administrations": MedicationAdministration,
    "wards": Ward,
    "beds": Bed,
    "admissions": Admission,
    "payers": Payer,
    "insurance_policies": InsurancePolicy,
    "claims": Claim,
    "supply_items": SupplyItem,
    "stores": Store,
    "supply_levels": SupplyLevel,
    "supply_transfers": SupplyTransfer,
    "inventory_movements": InventoryMovement,
    "inventory_alerts": InventoryAlert,
    "consents": Consent,
    "record_shares": RecordShare,
}
"""The clinical modules' collections (seeded by their own ``demo/<module>.py``, from the
appointments), by their ``SeedSummary`` field; the numbering counters are here too, so a drop
restarts numbering with the records that carry the numbers."""

SEEDED_MODELS: tuple[type[Document], ...] = (
    Department,
    Doctor,
    Nurse,
    AdminStaff,
    MedicalEquipment,
    Patient,
    Appointment,
    Reservation,
    TreatmentPlan,
    Treatment,
    Prescription,
    BillingAccount,
    WorkingHours,
    AppointmentType,
    *MODULE_MODELS.values(),
)
"""Every collection the demo writes; ``drop_seeded_collections`` drops exactly these, and
``is_empty`` looks at exactly these."""


@dataclass
class SeedSummary:
    """How many documents the seed wrote, per collection."""

    departments: int = 0
    doctors: int = 0
    nurses: int = 0
    admin_staff: int = 0
    equipment: int = 0
    patients: int = 0
    appointments: int = 0
    reservations: int = 0
    treatment_plans: int = 0
    treatments: int = 0
    prescriptions: int = 0
    billing_accounts: int = 0
    working_hours: int = 0
    appointment_types: int = 0
    outpatient_visits: int = 0
    outpatient_queue_numbers: int = 0
    vital_signs: int = 0
    clinical_notes: int = 0
    lab_tests: int = 0
    lab_orders: int = 0
    lab_samples: int = 0
    lab_results: int = 0
    lab_accession_counters: int = 0
    imaging_orders: int = 0
    imaging_studies: int = 0
    imaging_report_drafts: int = 0
    imaging_reports: int = 0
    imaging_accession_counters: int = 0
    drugs: int = 0
    stock_batches: int = 0
    dispenses: int = 0
    stock_movements: int = 0
    operating_theatres: int = 0
    surgery_bookings: int = 0
    surgical_records: int = 0
    emergency_visits: int = 0
    doctor_orders: int = 0
    nursing_care_plans: int = 0
    nursing_tasks: int = 0
    medication_administrations: int = 0
    wards: int = 0
    beds: int = 0
    admissions: int = 0
    payers: int = 0
    insurance_policies: int = 0
    claims: int = 0
    supply_items: int = 0
    stores: int = 0
    supply_levels: int = 0
    supply_transfers: int = 0
    inventory_movements: int = 0
    inventory_alerts: int = 0
    consents: int = 0
    record_shares: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def _insert(model: type[D], documents: Sequence[D]) -> int:
    if documents:
        await model.insert_many(documents)
    return len(documents)


def _reservations(appointments: Iterable[Appointment]) -> list[Reservation]:
    """The slots the active demo appointments hold, as booking through the API would hold them.

    The demo never double-books (its calendars), so these never collide; ids are derived from
    the reservation's key so every seed writes the same documents.
    """
    held = []
    for appointment in appointments:
        if appointment.status not in ACTIVE_APPOINTMENT_STATUSES:
            continue
        for resource, resource_id in held_resources(appointment):
            for slot in grid_slots(appointment.start_at, appointment.end_at):
                key = f"{resource.value}:{resource_id}:{slot.isoformat()}".encode()
                held.append(
                    Reservation(
                        id=PydanticObjectId(hashlib.blake2b(key, digest_size=12).digest()),
                        resource=resource,
                        resource_id=resource_id,
                        slot=slot,
                        appointment_id=appointment.id,
                        created_at=appointment.created_at,
                    )
                )
    return held


async def _insert_facility(facility: Facility, summary: SeedSummary) -> None:
    units = facility.units
    summary.departments = await _insert(Department, [u.department for u in units])
    summary.doctors = await _insert(Doctor, [d for u in units for d in u.doctors])
    summary.nurses = await _insert(Nurse, [n for u in units for n in u.nurses])
    summary.admin_staff = await _insert(AdminStaff, [a for u in units for a in u.admin_staff])
    summary.equipment = await _insert(MedicalEquipment, [e for u in units for e in u.equipment])
    doctors = [d for u in units for d in u.doctors]
    summary.working_hours = await _insert(WorkingHours, calendars.working_hours(doctors))
    summary.appointment_types = await _insert(AppointmentType, calendars.appointment_types())


async def _insert_batch(batch: Batch, summary: SeedSummary) -> None:
    # Care relations as services.care derives them after every booking and plan.
    links = care.derive([*batch.appointments, *batch.treatment_plans])
    for patient in batch.patients:
        patient.care = links.get(patient.id, []) if patient.id is not None else []
    summary.patients += await _insert(Patient, batch.patients)
    summary.appointments += await _insert(Appointment, batch.appointments)
    summary.reservations += await _insert(Reservation, _reservations(batch.appointments))
    summary.treatment_plans += await _insert(TreatmentPlan, batch.treatment_plans)
    summary.treatments += await _insert(Treatment, batch.treatments)
    summary.prescriptions += await _insert(Prescription, batch.prescriptions)
    summary.billing_accounts += await _insert(BillingAccount, batch.billing_accounts)


async def seed_demo(patients: int = 200, *, progress: bool = False) -> SeedSummary:
    """Fill the database with the deterministic demo facility and ``patients`` patients.

    The same ``patients`` always gives the same documents (fixed seed, ids and timestamps), so
    docs, tests and other processes can name records via ``demo.ids``. The database should be
    empty: fixed ids collide with an earlier seed.
    """
    if patients < 0:
        raise ValueError("patients must not be negative")
    summary = SeedSummary()
    facility = build_facility(patients)
    await _insert_facility(facility, summary)
    population = Population(facility)
    with tqdm(
        total=patients, disable=not progress, unit="patient", desc="Seeding demo", leave=True
    ) as bar:
        for first in range(1, patients + 1, BATCH_SIZE):
            last = min(first + BATCH_SIZE, patients + 1)
            batch = Batch()
            for n in range(first, last):
                population.add(n, batch)
            await _insert_batch(batch, summary)
            bar.update(last - first)
    before = await _module_counts()
    held = await db.collection(Reservation).count_documents({})  # modules book too (theatres)
    # Clinical modules, seeded from the appointments above in this order (each reads the last):
    # outpatient visits and queues
    await seed_outpatient()  # a visit per checked-in or completed appointment, today's queue
    # vital signs and clinical notes
    await seed_vitals_notes()
    # laboratory
    await seed_laboratory()  # the catalogue, and orders from completed visits
    # radiology
    await seed_radiology()  # imaging orders from completed visits, studies, final reports
    await seed_pharmacy()  # drug master, batches, past dispenses and their charges (before claims)
    # operating theatres: a Surgery department (counted below), its team, past and coming cases
    for name, added in (await seed_theatre()).items():
        setattr(summary, name, getattr(summary, name) + added)
    # emergency department
    await seed_emergency()  # two weeks of disposed ED visits, and today's live board
    await seed_wards()  # wards, beds, nurses' wards, current and past admissions
    # doctor orders and nursing care: keep AFTER the wards/admissions seed (reads its admissions)
    await seed_orders()  # orders, a care plan and their tasks per active admission
    await seed_medication()  # ward stock and doses: AFTER the orders and the pharmacy
    await seed_inventory()  # supplies: stores per department, levels, lots, past issues
    await seed_insurance()  # payers, policies, claims at every stage: AFTER every charge
    await seed_privacy()  # consents (some withdrawn), a share with the demo partner hospital
    for name, count in (await _module_counts()).items():
        setattr(summary, name, count - before[name])
    summary.reservations += await db.collection(Reservation).count_documents({}) - held
    await seed_accounts()  # demo sign-ins, one per role (demo/accounts.py)
    return summary


async def _module_counts() -> dict[str, int]:
    """Documents in each clinical module's collection: the modules' seeds return one number
    each, and some write with upserts, so what they wrote is counted where it landed."""
    return {
        name: await db.collection(model).count_documents({})
        for name, model in MODULE_MODELS.items()
    }


async def is_empty() -> bool:
    """True when no collection the demo fills holds a document: only then is seeding safe."""
    for model in SEEDED_MODELS:
        if await db.collection(model).find_one({}, projection={"_id": 1}) is not None:
            return False
    return True


async def drop_seeded_collections() -> None:
    """Drop every collection the demo fills; re-run Beanie's init afterwards to get indexes back."""
    for model in SEEDED_MODELS:
        await db.collection(model).drop()
