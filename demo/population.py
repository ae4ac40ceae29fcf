"""Demo patients and everything that hangs off them, one patient at a time.

``Population.add(n, batch)`` builds patient ``n`` with their appointments, treatment plans,
treatments, prescriptions and billing account. One RNG is consumed in patient order, so a seed of
the same size always produces the same records; the booking calendars live in the ``Facility``
so no doctor, patient or device is ever booked twice for the same slot.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from beanie import PydanticObjectId

from demo import catalog, ids, people
from demo.clock import ANCHOR, SLOT, SLOT_COUNT, SLOTS_PER_DAY, WORKDAYS, minutes, slot_start
from demo.facility import CHILD_SHARE, Facility, Unit
from models.billing import BillingAccount, Charge, ChargeSource, Insurance, Payment, PaymentMethod
from models.clinical import (
    Diagnosis,
    PerformerRole,
    Prescription,
    PrescriptionStatus,
    Route,
    StatusChange,
    Treatment,
    TreatmentPlan,
    TreatmentPlanStatus,
)
from models.patients import (
    Address,
    Allergy,
    Contact,
    EmergencyContact,
    MedicalHistoryEntry,
    Patient,
    Sex,
)
from models.scheduling import Appointment, AppointmentStatus, Cancellation, Reschedule
from models.staff import Doctor

SHOWCASE_PATIENT = ("Zoë", "Lefèvre", Sex.FEMALE)
"""Patient #1, pinned so the README can show accent-folding search ("zoe" finds "Zoë")."""

# Drugs a listed allergy rules out, so the demo never prescribes against an allergy.
_CONTRAINDICATED = {
    "Penicillin": {"Amoxicillin"},
    "Ibuprofen": {"Ibuprofen", "Naproxen", "Diclofenac gel 1%"},
    "Codeine": set(),
}


@dataclass
class Batch:
    """The documents of one batch of patients, inserted together and then dropped."""

    patients: list[Patient] = field(default_factory=list)
    appointments: list[Appointment] = field(default_factory=list)
    treatment_plans: list[TreatmentPlan] = field(default_factory=list)
    treatments: list[Treatment] = field(default_factory=list)
    prescriptions: list[Prescription] = field(default_factory=list)
    billing_accounts: list[BillingAccount] = field(default_factory=list)


@dataclass
class _Visit:
    appointment: Appointment
    unit: Unit


@dataclass
class _Sequences:
    appointment: int = 0
    treatment_plan: int = 0
    treatment: int = 0
    prescription: int = 0
    charge: int = 0
    payment: int = 0


class Population:
    def __init__(self, facility: Facility) -> None:
        self.rng = random.Random("shms-demo/patients")
        self.facility = facility
        self.seq = _Sequences()
        self.adult_units = [u for u in facility.units if u.spec.adult_weight]
        self.adult_weights = [u.spec.adult_weight for u in self.adult_units]
        self.child_units = [u for u in facility.units if u.spec.child_weight]
        self.child_weights = [u.spec.child_weight for u in self.child_units]
        by_code = facility.by_code
        self.gen = by_code["GEN"]
        self.ped = by_code["PED"]

    def add(self, n: int, batch: Batch) -> None:
        """Build patient ``n`` and their dependents into ``batch``."""
        rng = self.rng
        child = rng.random() < CHILD_SHARE and n != 1  # the showcase patient is an adult
        patient = self._patient(n, child)
        visits = self._appointments(patient, child)
        batch.patients.append(patient)
        batch.appointments.extend(v.appointment for v in visits)
        charges = self._visit_charges(visits)
        completed = [v for v in visits if v.appointment.status == AppointmentStatus.COMPLETED]
        plan: tuple[TreatmentPlan, Unit] | None = None
        if completed and rng.random() < 0.45:
            visit = rng.choice(completed)
            made, treatments = self._plan(patient, visit)
            plan = made, visit.unit
            batch.treatment_plans.append(made)
            batch.treatments.extend(treatments)
            charges += self._treatment_charges(treatments, visit.unit)
        if (completed or plan) and rng.random() < 0.5:
            batch.prescriptions.extend(self._prescriptions(patient, completed, plan))
        batch.billing_accounts.append(self._account(n, patient, charges))

    # -- patients -------------------------------------------------------------------------------

    def _patient(self, n: int, child: bool) -> Patient:
        rng = self.rng
        sex = rng.choices((Sex.FEMALE, Sex.MALE, Sex.OTHER, Sex.UNKNOWN), (49, 49, 1, 1))[0]
        first, last = people.first_name(rng, sex), people.last_name(rng)
        if n == 1:
            first, last, sex = SHOWCASE_PATIENT
        age_days = rng.randrange(180, 18 * 365) if child else rng.randrange(18 * 365, 92 * 365)
        born = (ANCHOR - timedelta(days=age_days)).date()
        registered = minutes(
            ANCHOR - timedelta(days=100 + rng.randrange(0, 1000), minutes=rng.randrange(0, 600))
        )
        city, area, low, high = rng.choice(catalog.CITIES)
        address = None
        if rng.random() < 0.9:
            address = Address(
                line1=f"{rng.choice(catalog.STREETS)} {rng.randint(1, 180)}",
                line2=f"Apartment {rng.randint(1, 40)}" if rng.random() < 0.2 else None,
                city=city,
                postal_code=f"{rng.randint(low, high):05d}",
                country="DE",
            )
        phone = people.mobile_phone(rng) if rng.random() < 0.7 else people.landline(rng, area)
        email = None
        if not child and rng.random() < 0.8:
            email = people.email(first, last, rng.choice(catalog.EMAIL_DOMAINS), str(n))
        doctors = (self.ped if child else self.gen).doctors
        patient = Patient(
            id=ids.patient_id(n),
            first_name=first,
            last_name=last,
            date_of_birth=born,
            sex=sex,
            national_id=f"{born:%y%m%d}-{n:07d}" if rng.random() < 0.95 else None,
            contact=Contact(
                phone=phone if rng.random() < 0.95 else None, email=email, address=address
            ),
            allergies=self._allergies(),
            medical_history=self._history(born, child),
            emergency_contact=self._emergency_contact(last, child),
            primary_doctor_id=rng.choice(doctors).id if rng.random() < 0.8 else None,
            created_at=registered,
            updated_at=registered + timedelta(days=rng.randrange(0, 60)),
        )
        patient.refresh_search_tokens()
        return patient

    def _allergies(self) -> list[Allergy]:
        rng = self.rng
        if rng.random() >= 0.25:
            return []
        picked = rng.sample(catalog.ALLERGIES, rng.choice((1, 1, 2)))
        return [Allergy(substance=s, reaction=r, severity=sev) for s, r, sev in picked]

    def _history(self, born: date, child: bool) -> list[MedicalHistoryEntry]:
        rng = self.rng
        pool = catalog.CHILD_HISTORY if child else catalog.HISTORY
        entries = []
        span = (ANCHOR.date() - born).days
        for condition, resolved in rng.sample(pool, rng.choice((0, 0, 1, 1, 2, 3))):
            entries.append(
                MedicalHistoryEntry(
                    condition=condition,
                    diagnosed_on=born + timedelta(days=rng.randrange(span // 4, span)),
                    resolved=resolved,
                    notes="Under regular review." if not resolved and rng.random() < 0.3 else None,
                )
            )
        return entries

    def _emergency_contact(self, last: str, child: bool) -> EmergencyContact | None:
        rng = self.rng
        if not child and rng.random() >= 0.85:
            return None
        sex = rng.choice((Sex.FEMALE, Sex.MALE))
        if child:
            relationship = "Mother" if sex == Sex.FEMALE else "Father"
        else:
            relationship = rng.choice(catalog.RELATIONSHIPS)
        family = child or (relationship != "Friend" and rng.random() < 0.7)
        return EmergencyContact(
            name=f"{people.first_name(rng, sex)} {last if family else people.last_name(rng)}",
            relationship=relationship,
            phone=people.mobile_phone(rng),
        )

    # -- appointments ---------------------------------------------------------------------------

    def _free(self, calendar: bytearray, slot: int, length: int) -> bool:
        return not any(calendar[slot : slot + length])

    def _find_slot(
        self, unit: Unit, length: int, busy: bytearray, preferred: Doctor | None
    ) -> tuple[Doctor, int] | None:
        """A doctor of ``unit`` and a start slot where both they and the patient are free."""
        rng = self.rng
        for attempt in range(40):
            doctor = preferred if preferred and attempt < 8 else rng.choice(unit.doctors)
            slot = rng.randrange(len(WORKDAYS)) * SLOTS_PER_DAY + rng.randrange(
                SLOTS_PER_DAY - length + 1
            )
            assert doctor.id is not None
            if self._free(busy, slot, length) and self._free(
                self.facility.calendar(doctor.id), slot, length
            ):
                return doctor, slot
        return None  # the department is full around here: this visit simply does not happen

    def _appointments(self, patient: Patient, child: bool) -> list[_Visit]:
        rng = self.rng
        busy = bytearray(SLOT_COUNT)
        own_doctor: dict[str, Doctor] = {}
        visits: list[_Visit] = []
        units, weights = (
            (self.child_units, self.child_weights)
            if child
            else (self.adult_units, self.adult_weights)
        )
        for _ in range(rng.choice((1, 2, 2, 3, 3, 3, 3, 4, 4, 5))):
            unit = rng.choices(units, weights)[0]
            length = 2 if rng.random() < 0.15 else 1
            found = self._find_slot(unit, length, busy, own_doctor.get(unit.spec.code))
            if found is None:
                continue
            doctor, slot = found
            own_doctor.setdefault(unit.spec.code, doctor)
            visits.append(
                _Visit(self._appointment(patient, unit, doctor, slot, length, busy), unit)
            )
        visits.sort(key=lambda v: v.appointment.start_at)
        return visits

    def _appointment(
        self, patient: Patient, unit: Unit, doctor: Doctor, slot: int, length: int, busy: bytearray
    ) -> Appointment:
        rng = self.rng
        start = slot_start(slot)
        end = start + length * SLOT
        if start < ANCHOR:
            roll = rng.random()
            status = (
                AppointmentStatus.COMPLETED
                if roll < 0.76
                else AppointmentStatus.NO_SHOW
                if roll < 0.86
                else AppointmentStatus.CANCELLED
            )
        else:
            status = (
                AppointmentStatus.SCHEDULED if rng.random() < 0.9 else AppointmentStatus.CANCELLED
            )
        holds_slot = status != AppointmentStatus.CANCELLED
        equipment_id = self._book_equipment(unit, slot, length, holds_slot)
        if holds_slot:
            assert doctor.id is not None
            for calendar in (self.facility.calendar(doctor.id), busy):
                calendar[slot : slot + length] = b"\x01" * length

        history: list[Reschedule] = []
        earliest = start
        previous_slot = None
        if rng.random() < 0.08:
            previous_slot = rng.randrange(SLOT_COUNT - length + 1)
            earliest = min(start, slot_start(previous_slot))
        booked = minutes(
            earliest - timedelta(days=rng.randrange(2, 30), minutes=rng.randrange(0, 600))
        )
        booked = min(booked, ANCHOR - timedelta(hours=2))
        last_change = booked
        if previous_slot is not None and previous_slot != slot:
            previous = slot_start(previous_slot)
            at = minutes(booked + (min(earliest, ANCHOR) - booked) * rng.uniform(0.2, 0.8))
            history.append(
                Reschedule(
                    previous_start_at=previous,
                    previous_end_at=previous + length * SLOT,
                    start_at=start,
                    end_at=end,
                    reason=rng.choice(catalog.RESCHEDULE_REASONS),
                    at=at,
                )
            )
            last_change = at
        cancellation = None
        if status == AppointmentStatus.CANCELLED:
            at = minutes(last_change + (min(start, ANCHOR) - last_change) * rng.uniform(0.1, 0.9))
            cancellation = Cancellation(reason=rng.choice(catalog.CANCEL_REASONS), at=at)
            last_change = at
        elif status in (AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW):
            last_change = end
        notes = None
        if status == AppointmentStatus.COMPLETED and rng.random() < 0.4:
            notes = rng.choice(catalog.VISIT_NOTES)
        self.seq.appointment += 1
        return Appointment(
            id=ids.appointment_id(self.seq.appointment),
            patient_id=patient.id,
            doctor_id=doctor.id,
            department_id=unit.id,
            equipment_id=equipment_id,
            start_at=start,
            end_at=end,
            reason=rng.choice(unit.spec.reasons),
            notes=notes,
            status=status,
            reschedule_history=history,
            cancellation=cancellation,
            created_at=booked,
            updated_at=last_change,
        )

    def _book_equipment(
        self, unit: Unit, slot: int, length: int, holds_slot: bool
    ) -> PydanticObjectId | None:
        rng = self.rng
        devices = unit.bookable_equipment
        if not devices or rng.random() >= unit.spec.equipment_rate:
            return None
        for device in rng.sample(devices, min(3, len(devices))):
            assert device.id is not None
            calendar = self.facility.calendar(device.id)
            if self._free(calendar, slot, length):
                if holds_slot:
                    calendar[slot : slot + length] = b"\x01" * length
                return device.id
        return None

    # -- clinical -------------------------------------------------------------------------------

    def _plan(self, patient: Patient, visit: _Visit) -> tuple[TreatmentPlan, list[Treatment]]:
        rng = self.rng
        unit, appointment = visit.unit, visit.appointment
        diagnosis = rng.choice(unit.spec.diagnoses)
        status = rng.choices(
            (
                TreatmentPlanStatus.ACTIVE,
                TreatmentPlanStatus.COMPLETED,
                TreatmentPlanStatus.ON_HOLD,
                TreatmentPlanStatus.DRAFT,
                TreatmentPlanStatus.CANCELLED,
            ),
            (50, 25, 10, 8, 7),
        )[0]
        begun = appointment.end_at
        start_date: datetime | None = begun
        end_date: datetime | None = None
        closed_by = ANCHOR  # treatments can only have happened before this
        if status == TreatmentPlanStatus.DRAFT:
            start_date = None
        elif status == TreatmentPlanStatus.ACTIVE:
            end_date = begun + timedelta(days=90)
        elif status in (TreatmentPlanStatus.COMPLETED, TreatmentPlanStatus.CANCELLED):
            end_date = closed_by = min(ANCHOR, begun + timedelta(days=rng.randrange(7, 60)))
        count = {
            TreatmentPlanStatus.DRAFT: 0,
            TreatmentPlanStatus.ACTIVE: rng.randint(1, 3),
            TreatmentPlanStatus.COMPLETED: rng.randint(2, 4),
            TreatmentPlanStatus.ON_HOLD: rng.randint(1, 2),
            TreatmentPlanStatus.CANCELLED: rng.randint(0, 1),
        }[status]
        self.seq.treatment_plan += 1
        plan_id = ids.treatment_plan_id(self.seq.treatment_plan)
        times = sorted(minutes(begun + (closed_by - begun) * rng.random()) for _ in range(count))
        treatments = [self._treatment(patient, plan_id, appointment, unit, at) for at in times]
        plan = TreatmentPlan(
            id=plan_id,
            patient_id=patient.id,
            doctor_id=appointment.doctor_id,
            diagnosis=Diagnosis(code=diagnosis.code, description=diagnosis.description),
            goals=list(diagnosis.goals),
            notes="Plan agreed with the patient." if rng.random() < 0.3 else None,
            status=status,
            start_date=start_date,
            end_date=end_date,
            created_at=begun,
            updated_at=max(
                [begun, *times, *([end_date] if end_date and end_date <= ANCHOR else [])]
            ),
        )
        return plan, treatments

    def _treatment(
        self,
        patient: Patient,
        plan_id: PydanticObjectId,
        appointment: Appointment,
        unit: Unit,
        at: datetime,
    ) -> Treatment:
        rng = self.rng
        procedure = rng.choice(unit.spec.procedures)
        by_doctor = rng.random() < 0.6
        performer = appointment.doctor_id if by_doctor else rng.choice(unit.nurses).id
        devices = [
            d for d in unit.bookable_equipment if d.equipment_type == procedure.equipment_type
        ]
        self.seq.treatment += 1
        return Treatment(
            id=ids.treatment_id(self.seq.treatment),
            plan_id=plan_id,
            patient_id=patient.id,
            performed_by_id=performer,
            performed_by_role=PerformerRole.DOCTOR if by_doctor else PerformerRole.NURSE,
            performed_at=at,
            procedure=procedure.name,
            outcome=rng.choice(catalog.OUTCOMES),
            equipment_id=rng.choice(devices).id if devices else None,
            created_at=at,
            updated_at=at,
        )

    def _prescriptions(
        self,
        patient: Patient,
        completed: list[_Visit],
        plan: tuple[TreatmentPlan, Unit] | None,
    ) -> list[Prescription]:
        rng = self.rng
        ruled_out: set[str] = set()
        for allergy in patient.allergies:
            ruled_out |= _CONTRAINDICATED.get(allergy.substance, set())
        made = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            plan_id = None
            if plan and plan[0].start_date and (not completed or rng.random() < 0.6):
                unit = plan[1]
                prescriber = plan[0].doctor_id
                plan_id = plan[0].id
                written = min(plan[0].start_date + timedelta(days=rng.randrange(0, 10)), ANCHOR)
            elif completed:
                visit = rng.choice(completed)
                unit, prescriber = visit.unit, visit.appointment.doctor_id
                written = visit.appointment.end_at
            else:
                continue
            drugs = [d for d in unit.spec.drugs if d.drug not in ruled_out]
            if not drugs:
                continue
            drug = rng.choice(drugs)
            history = self._prescription_history(written)
            self.seq.prescription += 1
            made.append(
                Prescription(
                    id=ids.prescription_id(self.seq.prescription),
                    patient_id=patient.id,
                    prescriber_id=prescriber,
                    treatment_plan_id=plan_id,
                    drug=drug.drug,
                    dose=drug.dose,
                    route=Route(drug.route),
                    frequency=drug.frequency,
                    duration_days=drug.duration_days,
                    refills=rng.choice((0, 0, 0, 1, 2)) if drug.duration_days >= 28 else 0,
                    instructions=drug.instructions,
                    status=PrescriptionStatus(history[-1].status),
                    status_history=history,
                    created_at=written,
                    updated_at=history[-1].at,
                )
            )
        return made

    def _prescription_history(self, written: datetime) -> list[StatusChange]:
        """A path through the allowed transitions that stops at the demo's "now"."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            path = [PrescriptionStatus.DISPENSED, PrescriptionStatus.PICKED_UP]
        elif roll < 0.6:
            path = [PrescriptionStatus.DISPENSED]
        elif roll < 0.85:
            path = []
        elif roll < 0.93:
            path = [PrescriptionStatus.CANCELLED]
        else:
            path = [PrescriptionStatus.DISPENSED, PrescriptionStatus.CANCELLED]
        history = [StatusChange(status=PrescriptionStatus.PRESCRIBED.value, at=written)]
        at = written
        for status in path:
            at = minutes(at + timedelta(hours=rng.randint(1, 72)))
            if at > ANCHOR:
                break
            history.append(StatusChange(status=status.value, at=at))
        return history

    # -- billing --------------------------------------------------------------------------------

    def _visit_charges(self, visits: list[_Visit]) -> list[Charge]:
        charges = []
        for visit in visits:
            appointment, unit = visit.appointment, visit.unit
            if appointment.status == AppointmentStatus.COMPLETED:
                charges.append(
                    Charge(
                        description=f"Consultation: {unit.spec.name}",
                        amount=unit.spec.consultation_fee,
                        source=ChargeSource.APPOINTMENT,
                        source_id=appointment.id,
                        department_id=unit.id,
                        created_at=appointment.end_at,
                    )
                )
                if appointment.equipment_id is not None:
                    charges.append(self._equipment_charge(unit, appointment))
            elif appointment.status == AppointmentStatus.NO_SHOW and self.rng.random() < 0.5:
                charges.append(
                    Charge(
                        description="Missed appointment fee",
                        amount=catalog.NO_SHOW_FEE,
                        source=ChargeSource.APPOINTMENT,
                        source_id=appointment.id,
                        department_id=unit.id,
                        created_at=appointment.end_at,
                    )
                )
        return charges

    def _equipment_charge(self, unit: Unit, use: Appointment | Treatment) -> Charge:
        """Equipment is billed per use: the appointment that booked it or the treatment."""
        device = use.equipment_id
        assert device is not None
        name = next(e.name for e in unit.equipment if e.id == device)
        at = use.end_at if isinstance(use, Appointment) else use.performed_at
        return Charge(
            description=f"Equipment use: {name}",
            amount=unit.equipment_fees[device],
            source=ChargeSource.EQUIPMENT_USE,
            source_id=use.id,
            department_id=unit.id,
            created_at=at,
        )

    def _treatment_charges(self, treatments: list[Treatment], unit: Unit) -> list[Charge]:
        prices = {p.name: p.price for p in unit.spec.procedures}
        charges = []
        for treatment in treatments:
            charges.append(
                Charge(
                    description=f"Treatment: {treatment.procedure}",
                    amount=prices[treatment.procedure],
                    source=ChargeSource.TREATMENT,
                    source_id=treatment.id,
                    department_id=unit.id,
                    created_at=treatment.performed_at,
                )
            )
            if treatment.equipment_id is not None:
                charges.append(self._equipment_charge(unit, treatment))
        return charges

    def _account(self, n: int, patient: Patient, charges: list[Charge]) -> BillingAccount:
        rng = self.rng
        charges.sort(key=lambda c: c.created_at)
        for charge in charges:
            self.seq.charge += 1
            charge.id = ids.charge_id(self.seq.charge)
        insurance = None
        if rng.random() < 0.7:
            insurance = Insurance(
                provider=rng.choice(catalog.INSURERS),
                policy_number=f"{chr(65 + n % 26)}{n:09d}",
                group_number=f"G-{rng.randrange(100, 1000)}" if rng.random() < 0.3 else None,
                valid_until=datetime(2027, 12, 31, tzinfo=ANCHOR.tzinfo),
            )
        total = sum(c.amount for c in charges)
        payments = self._payments(total, charges, insurance)
        paid = sum(p.amount for p in payments)
        moments = [patient.created_at, *(c.created_at for c in charges)]
        moments += [p.received_at for p in payments]
        return BillingAccount(
            id=ids.billing_account_id(n),
            patient_id=patient.id,
            currency="EUR",
            charges=charges,
            payments=payments,
            total_charged=total,
            total_paid=paid,
            insurance=insurance,
            created_at=patient.created_at,
            updated_at=max(moments),
        )

    def _payments(
        self, total: int, charges: list[Charge], insurance: Insurance | None
    ) -> list[Payment]:
        rng = self.rng
        if total < 2:
            return []
        roll = rng.random()
        if roll >= 0.85:
            return []
        due = total if roll < 0.6 else max(1, int(total * rng.uniform(0.2, 0.7)))
        received = charges[-1].created_at
        parts: list[tuple[int, PaymentMethod, str | None]] = []
        if insurance is not None:
            covered = max(1, due * 80 // 100)
            parts.append((covered, PaymentMethod.INSURANCE, f"Claim {insurance.policy_number}"))
            due -= covered
        if due > 0:
            method = rng.choice(
                (PaymentMethod.CARD, PaymentMethod.CASH, PaymentMethod.BANK_TRANSFER)
            )
            parts.append((due, method, None))
        payments = []
        for amount, method, reference in parts:
            received = minutes(
                min(ANCHOR, received + timedelta(days=rng.randrange(1, 21), hours=rng.randrange(9)))
            )
            self.seq.payment += 1
            if method == PaymentMethod.BANK_TRANSFER:
                reference = f"TRX-{self.seq.payment:08d}"
            payments.append(
                Payment(
                    id=ids.payment_id(self.seq.payment),
                    amount=amount,
                    method=method,
                    reference=reference,
                    received_at=received,
                )
            )
        return payments
