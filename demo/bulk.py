"""A large deterministic facility for benchmarks: ``appointments`` visits over two years, fast.

``demo.seed`` builds a rich patient at a time through the models and Beanie, with calendars
and reservations: the wrong tool for 100,000 appointments. This builds the stored documents as
raw dicts (the shape Beanie would write: ``tests/test_bulk.py`` checks it) and writes them with
the driver's ``insert_many(ordered=False)`` in batches of ``BATCH_SIZE``.

What it leaves out, on purpose: nurses, admin staff, treatments, prescriptions, calendars,
sign-in accounts and the ``Reservation`` collection. This data is for reading aggregates, not
for booking: reservations only matter to the API's booking path, so the future ``scheduled``
appointments hold none, and a booking made through the API could overlap them. Among the bulk
documents themselves no doctor, device or patient is booked twice for one slot (cancelled
appointments hold nothing), so utilisation stays meaningful.

The writes bypass ``services.changes``: seed before anything is cached (a fresh database gets a
fresh cache namespace), as the benchmark does.

Unique indexes are dropped while a collection is loaded and rebuilt after it: mongomock checks
every unique index of every inserted document by scanning the collection (O(n²) for 20,000
billing accounts), while rebuilding one is a single pass, and also what MongoDB recommends for
bulk loads. The rebuild verifies uniqueness, so a bad load still fails loudly.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from beanie import Document

import db
from auth.policy import REGISTRY
from demo import catalog, ids, people
from demo.clock import ANCHOR
from demo.facility import doctor_location
from models import (
    Appointment,
    BillingAccount,
    Department,
    Doctor,
    MedicalEquipment,
    Patient,
    TreatmentPlan,
)
from models.patients import CareLink, Sex, sealed_tokens
from services import care

Raw = dict[str, Any]

FIRST_DAY = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 730
"""Appointments start on a day of 2025-01-01 .. 2026-12-31 (UTC)."""
NOW = ANCHOR
"""The demo's fixed "now": earlier appointments are history, later ones are still scheduled."""
DAY_OPENS = timedelta(hours=8)
GRID = timedelta(minutes=5)
SLOTS_PER_DAY = 120  # 08:00 to 18:00 on the 5-minute booking grid
LENGTHS = (3, 4, 6, 9, 12)  # 15, 20, 30, 45, 60 minutes
LENGTH_WEIGHTS = (20, 15, 40, 15, 10)
APPOINTMENTS_PER_DOCTOR = 2500
APPOINTMENTS_PER_DEVICE = 1667
EQUIPMENT_SHARE = 0.5
BATCH_SIZE = 5000
ATTEMPTS = 200
"""Slots tried per appointment before the facility counts as full (never near the sizing above)."""

SEEDED_MODELS: tuple[type[Document], ...] = (
    Department,
    Doctor,
    MedicalEquipment,
    Patient,
    Appointment,
    TreatmentPlan,
    BillingAccount,
)
"""The collections ``seed_bulk`` writes, in the order it writes them."""


class FacilityFull(RuntimeError):
    """No free slot was found for an appointment: the facility is sized too small."""


def _at(day: int, slot: int) -> datetime:
    return FIRST_DAY + timedelta(days=day) + DAY_OPENS + slot * GRID


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def sizes(appointments: int) -> dict[str, int]:
    """How big the facility for ``appointments`` is: enough staff that random booking finds room.

    Billing accounts are not listed: there is one per patient who has an appointment, which is
    nearly every patient (each draws about five).
    """
    return {
        "departments": len(catalog.DEPARTMENTS),
        "doctors": max(
            2 * len(catalog.DEPARTMENTS), math.ceil(appointments / APPOINTMENTS_PER_DOCTOR)
        ),
        "equipment": max(
            2 * len(catalog.DEPARTMENTS), math.ceil(appointments / APPOINTMENTS_PER_DEVICE)
        ),
        "patients": max(1, appointments // 5) if appointments else 0,
        "appointments": appointments,
        "treatment_plans": appointments // 10,
    }


class _Builder:
    """Builds every document in memory from one RNG, consumed in a fixed order."""

    def __init__(self, appointments: int, seed: int) -> None:
        self.rng = random.Random(f"shms-bulk/{seed}")
        self.appointment_count = appointments
        self.patient_count = sizes(appointments)["patients"]
        self.specs = catalog.DEPARTMENTS
        self.department_ids = [ids.department_id(n) for n in range(1, len(self.specs) + 1)]
        self.departments: list[Raw] = []
        self.doctors: list[Raw] = []
        self.equipment: list[Raw] = []
        self.patients: list[Raw] = []
        self.appointments: list[Raw] = []
        self.plans: list[Raw] = []
        self.accounts: list[Raw] = []
        self.doctor_unit: list[int] = []
        self.unit_devices: list[list[int]] = [[] for _ in self.specs]
        self.device_fee: list[int] = []
        self.patient_visits: dict[int, list[int]] = defaultdict(list)
        """Indexes into ``appointments`` by patient number."""

    def build(self) -> None:
        size = sizes(self.appointment_count)
        self._facility(size["doctors"], size["equipment"])
        self._appointments()
        self._patients()
        self._plans()
        self._care()
        self._accounts()

    def _care(self) -> None:
        """Each patient's care relations, as services.care derives them after every write."""
        found: dict[Any, list[CareLink]] = defaultdict(list)
        for model, rows in ((Appointment, self.appointments), (TreatmentPlan, self.plans)):
            declaration = REGISTRY.for_model(model)
            assert declaration is not None and declaration.care is not None
            for row in rows:
                found[row["patient_id"]].extend(care.links_of(declaration.care, row))
        for patient in self.patients:
            links = care.merge(found.get(patient["_id"], []))
            patient["care"] = [link.model_dump(exclude_none=True) for link in links]

    # -- facility --------------------------------------------------------------------------------

    def _facility(self, doctors: int, devices: int) -> None:
        rng = self.rng
        opened = datetime(2023, 1, 1, tzinfo=UTC)
        for n in range(1, doctors + 1):
            unit = (n - 1) % len(self.specs)
            spec = self.specs[unit]
            sex = rng.choice(("female", "male"))
            first = people.first_name(rng, Sex(sex))
            last = people.last_name(rng)
            self.doctor_unit.append(unit)
            self.doctors.append(
                {
                    "_id": ids.doctor_id(n),
                    "created_at": opened,
                    "updated_at": opened,
                    "first_name": first,
                    "last_name": last,
                    "department_id": self.department_ids[unit],
                    "contact": {
                        "email": people.email(first, last, catalog.STAFF_EMAIL_DOMAIN, str(n)),
                        "phone": f"{catalog.STAFF_PHONE} {1000 + n}",
                    },
                    "active": True,
                    "specialty": spec.specialties[
                        (n - 1) // len(self.specs) % len(spec.specialties)
                    ],
                    "licence_number": f"MD-{spec.code}-{n:05d}",
                    "location": doctor_location(n).model_dump(),
                }
            )
        for n, (spec, department) in enumerate(zip(self.specs, self.department_ids, strict=True)):
            self.departments.append(
                {
                    "_id": department,
                    "created_at": opened,
                    "updated_at": opened,
                    "name": spec.name,
                    "code": spec.code,
                    "description": spec.description,
                    "location": spec.location,
                    "head_doctor_id": ids.doctor_id(n + 1),  # doctor n+1 is this unit's first
                }
            )
        for n in range(1, devices + 1):
            unit = (n - 1) % len(self.specs)
            spec = self.specs[unit]
            device = spec.equipment[(n - 1) // len(self.specs) % len(spec.equipment)]
            commissioned = opened + timedelta(days=rng.randrange(0, 700), hours=9)
            self.unit_devices[unit].append(n - 1)
            self.device_fee.append(device.fee)
            self.equipment.append(
                {
                    "_id": ids.equipment_id(n),
                    "created_at": commissioned,
                    "updated_at": commissioned,
                    "name": device.name,
                    "equipment_type": device.equipment_type,
                    "serial_number": f"{spec.code}-{device.code}-{n:05d}",
                    "manufacturer": device.manufacturer,
                    "model": device.model,
                    "department_id": self.department_ids[unit],
                    "status": "available",
                    "status_history": [
                        {
                            "from_status": None,
                            "to_status": "available",
                            "reason": "Commissioned",
                            "at": commissioned,
                        }
                    ],
                    "allocation_history": [],
                }
            )

    # -- appointments ----------------------------------------------------------------------------

    def _appointments(self) -> None:
        rng = self.rng
        span = DAYS * SLOTS_PER_DAY
        doctor_busy = [bytearray(span) for _ in self.doctors]
        device_busy = [bytearray(span) for _ in self.equipment]
        patient_busy: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for n in range(1, self.appointment_count + 1):
            patient = rng.randrange(1, self.patient_count + 1)
            length = rng.choices(LENGTHS, LENGTH_WEIGHTS)[0]
            wants_device = rng.random() < EQUIPMENT_SHARE
            for attempt in range(ATTEMPTS):
                if attempt % 10 == 0:
                    doctor = rng.randrange(len(self.doctors))
                day = rng.randrange(DAYS)
                first = day * SLOTS_PER_DAY + rng.randrange(SLOTS_PER_DAY - length + 1)
                last = first + length
                if doctor_busy[doctor].find(1, first, last) != -1:
                    continue
                if any(a < last and first < b for a, b in patient_busy[patient]):
                    continue
                break
            else:
                raise FacilityFull(f"no free slot for appointment {n}; add doctors")
            unit = self.doctor_unit[doctor]
            device = None
            if wants_device:
                candidates = self.unit_devices[unit]
                for pick in rng.sample(candidates, min(3, len(candidates))):
                    if device_busy[pick].find(1, first, last) == -1:
                        device = pick
                        break
            raw = self._appointment(n, patient, doctor, unit, device, first, length)
            if raw["status"] != "cancelled":  # a cancelled appointment holds nothing
                doctor_busy[doctor][first:last] = b"\x01" * length
                patient_busy[patient].append((first, last))
                if device is not None:
                    device_busy[device][first:last] = b"\x01" * length
            self.appointments.append(raw)
            self.patient_visits[patient].append(n - 1)

    def _appointment(
        self,
        n: int,
        patient: int,
        doctor: int,
        unit: int,
        device: int | None,
        slot: int,
        length: int,
    ) -> Raw:
        rng = self.rng
        spec = self.specs[unit]
        start = _at(*divmod(slot, SLOTS_PER_DAY))
        end = start + length * GRID
        roll = rng.random()
        if start < NOW:
            status = "completed" if roll < 0.76 else "no_show" if roll < 0.86 else "cancelled"
        else:
            status = "scheduled" if roll < 0.9 else "cancelled"
        booked = min(
            _minute(start - timedelta(days=rng.randrange(2, 30), minutes=rng.randrange(0, 600))),
            NOW - timedelta(hours=2),
        )
        changed = booked
        cancellation = None
        if status == "cancelled":
            changed = _minute(booked + (min(start, NOW) - booked) * rng.uniform(0.1, 0.9))
            cancellation = {"reason": rng.choice(catalog.CANCEL_REASONS), "at": changed}
        elif status in ("completed", "no_show"):
            changed = end
        return {
            "_id": ids.appointment_id(n),
            "created_at": booked,
            "updated_at": changed,
            "patient_id": ids.patient_id(patient),
            "doctor_id": self.doctors[doctor]["_id"],
            "department_id": self.department_ids[unit],
            "equipment_id": None if device is None else self.equipment[device]["_id"],
            "start_at": start,
            "end_at": end,
            "reason": rng.choice(spec.reasons),
            "notes": None,
            "status": status,
            "reschedule_history": [],
            "cancellation": cancellation,
        }

    # -- patients --------------------------------------------------------------------------------

    def _patients(self) -> None:
        rng = self.rng
        for n in range(1, self.patient_count + 1):
            sex = rng.choices(("female", "male", "other", "unknown"), (49, 49, 1, 1))[0]
            first = people.first_name(rng, Sex(sex))
            last = people.last_name(rng)
            born = (NOW - timedelta(days=rng.randrange(365, 92 * 365))).date()
            registered = _minute(
                datetime(2023, 1, 1, tzinfo=UTC)
                + timedelta(days=rng.randrange(0, 700), minutes=rng.randrange(0, 600))
            )
            city, _, low, high = rng.choice(catalog.CITIES)
            visits = [self.appointments[i] for i in self.patient_visits.get(n, ())]
            raw: Raw = {
                "_id": ids.patient_id(n),
                "created_at": registered,
                "updated_at": registered,
                "first_name": first,
                "last_name": last,
                "date_of_birth": datetime(born.year, born.month, born.day),
                "sex": sex,
                # No national_id: its unique index is sparse, so absent ids are never compared.
                "contact": {
                    "phone": people.mobile_phone(rng),
                    "address": {
                        "line1": f"{rng.choice(catalog.STREETS)} {rng.randint(1, 180)}",
                        "city": city,
                        "postal_code": f"{rng.randint(low, high):05d}",
                        "country": "DE",
                    },
                },
                "allergies": [],
                "medical_history": [],
                "search_tokens": sealed_tokens(first, last),
                "care": [],  # filled by _care once the plans exist
                "care_revision": 0,
            }
            if visits:
                raw["primary_doctor_id"] = visits[0]["doctor_id"]
            self.patients.append(raw)

    # -- treatment plans -------------------------------------------------------------------------

    def _plans(self) -> None:
        rng = self.rng
        completed = [a for a in self.appointments if a["status"] == "completed"]
        if not completed:
            return
        unit_of = {d: n for n, d in enumerate(self.department_ids)}
        statuses = ("active", "completed", "on_hold", "cancelled")
        for n in range(1, self.appointment_count // 10 + 1):
            visit = rng.choice(completed)
            diagnosis = rng.choice(self.specs[unit_of[visit["department_id"]]].diagnoses)
            status = rng.choices(statuses, (50, 30, 10, 10))[0]
            begun = visit["end_at"]
            end = None
            if status == "active":
                end = begun + timedelta(days=90)
            elif status in ("completed", "cancelled"):
                end = min(NOW, begun + timedelta(days=rng.randrange(7, 60)))
            self.plans.append(
                {
                    "_id": ids.treatment_plan_id(n),
                    "created_at": begun,
                    "updated_at": begun if end is None or end > NOW else end,
                    "patient_id": visit["patient_id"],
                    "doctor_id": visit["doctor_id"],
                    "diagnosis": {"code": diagnosis.code, "description": diagnosis.description},
                    "goals": list(diagnosis.goals),
                    "notes": None,
                    "status": status,
                    "start_date": begun,
                    "end_date": end,
                }
            )

    # -- billing ---------------------------------------------------------------------------------

    def _accounts(self) -> None:
        rng = self.rng
        fee = {d: s.consultation_fee for d, s in zip(self.department_ids, self.specs, strict=True)}
        device_fee = {e["_id"]: f for e, f in zip(self.equipment, self.device_fee, strict=True)}
        device_name = {e["_id"]: e["name"] for e in self.equipment}
        name = {d: s.name for d, s in zip(self.department_ids, self.specs, strict=True)}
        charge_seq = payment_seq = 0
        for patient in self.patients:
            n = ids.parse_id(patient["_id"])
            assert n is not None
            visits = [self.appointments[i] for i in self.patient_visits.get(n[1], ())]
            if not visits:
                continue
            charges: list[Raw] = []
            for visit in sorted(visits, key=lambda v: v["start_at"]):
                department, end = visit["department_id"], visit["end_at"]
                items: list[tuple[str, int, str]] = []
                if visit["status"] == "completed":
                    items.append(
                        (f"Consultation: {name[department]}", fee[department], "appointment")
                    )
                    if visit["equipment_id"] is not None:
                        device = visit["equipment_id"]
                        items.append(
                            (
                                f"Equipment use: {device_name[device]}",
                                device_fee[device],
                                "equipment_use",
                            )
                        )
                elif visit["status"] == "no_show" and rng.random() < 0.5:
                    items.append(("Missed appointment fee", catalog.NO_SHOW_FEE, "appointment"))
                for description, amount, source in items:
                    charge_seq += 1
                    charges.append(
                        {
                            "id": ids.charge_id(charge_seq),
                            "description": description,
                            "amount": amount,
                            "source": source,
                            "source_id": visit["_id"],
                            "department_id": department,
                            "created_at": end,
                            "claim_id": None,
                        }
                    )
            payments: list[Raw] = []
            total = sum(c["amount"] for c in charges)
            roll = rng.random()
            if charges and roll < 0.85:
                # Most accounts are settled, some only in part; the rest still owe everything.
                due = total if roll < 0.6 else max(1, int(total * rng.uniform(0.2, 0.7)))
                received = min(
                    NOW, charges[-1]["created_at"] + timedelta(days=rng.randrange(1, 21))
                )
                payment_seq += 1
                payments.append(
                    {
                        "id": ids.payment_id(payment_seq),
                        "amount": due,
                        "method": rng.choice(("card", "cash", "bank_transfer", "insurance")),
                        "reference": None,
                        "received_at": _minute(received),
                        "payer": "patient",
                        "claim_id": None,
                    }
                )
            paid = sum(p["amount"] for p in payments)
            moments = [patient["created_at"], *(c["created_at"] for c in charges)]
            moments += [p["received_at"] for p in payments]
            self.accounts.append(
                {
                    "_id": ids.billing_account_id(n[1]),
                    "created_at": patient["created_at"],
                    "updated_at": max(moments),
                    "patient_id": patient["_id"],
                    "currency": "EUR",
                    "charges": charges,
                    "payments": payments,
                    "total_charged": total,
                    "total_paid": paid,
                    "insurance": None,
                    "insurer_due": 0,  # no claims in bulk data: the patient owes the rest
                    "insurer_paid": 0,
                    "written_off": 0,
                    "write_offs": [],
                }
            )


def build(appointments: int = 100_000, *, seed: int = 7) -> dict[str, list[Raw]]:
    """Every document ``seed_bulk`` writes, by collection name; nothing is written."""
    if appointments < 0:
        raise ValueError("appointments must not be negative")
    builder = _Builder(appointments, seed)
    builder.build()
    return {
        "departments": builder.departments,
        "doctors": builder.doctors,
        "equipment": builder.equipment,
        "patients": builder.patients,
        "appointments": builder.appointments,
        "treatment_plans": builder.plans,
        "billing_accounts": builder.accounts,
    }


async def _write(model: type[Document], documents: list[Raw]) -> int:
    """Insert in batches with the unique indexes dropped, then rebuild them (see module doc)."""
    collection = db.collection(model)
    if not documents:
        return 0
    dropped: list[tuple[str, Raw]] = []
    for name, spec in (await collection.index_information()).items():
        if name != "_id_" and spec.get("unique"):
            dropped.append((name, spec))
            await collection.drop_index(name)
    for first in range(0, len(documents), BATCH_SIZE):
        await collection.insert_many(documents[first : first + BATCH_SIZE], ordered=False)
    for name, spec in dropped:
        options = {k: spec[k] for k in ("sparse", "partialFilterExpression") if k in spec}
        await collection.create_index(list(spec["key"]), name=name, unique=True, **options)
    return len(documents)


async def seed_bulk(appointments: int = 100_000, *, seed: int = 7) -> dict[str, int]:
    """Fill an empty, initialised database with a facility of ``appointments`` appointments.

    The same arguments always write the same documents (ids from ``demo.ids``, so a second seed
    into the same database fails on duplicate ids). Returns the documents written per collection.
    """
    documents = build(appointments, seed=seed)
    counts: dict[str, int] = {}
    for model in SEEDED_MODELS:
        name = model.get_settings().name
        assert name is not None
        counts[name] = await _write(model, documents[name])
    return counts


__all__ = ["SEEDED_MODELS", "FacilityFull", "build", "seed_bulk", "sizes"]
