"""The demo hospital itself: departments, staff and equipment, plus their booking calendars.

The base facility (``department_id(1..6)``, the first doctors, nurses, admin staff and all the
equipment) is the same for every seed size. Larger seeds add doctors and nurses after the base
ones, so a 100,000-patient demo still has free slots and never double-books anybody.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import timedelta

from beanie import PydanticObjectId

from demo import catalog, ids, people
from demo.catalog import DepartmentSpec
from demo.clock import ANCHOR, SLOT_COUNT, minutes
from models.departments import Department
from models.equipment import EquipmentStatus, EquipmentStatusChange, MedicalEquipment
from models.patients import Sex
from models.staff import AdminStaff, Doctor, GeoPoint, Nurse, StaffContact

OPENED_AT = ANCHOR - timedelta(days=3 * 365)
"""When the demo hospital's records begin: created_at of the facility documents."""

AVERAGE_SLOTS_PER_PATIENT = 3.6  # ~3 appointments, some an hour long
CHILD_SHARE = 0.15
TARGET_UTILISATION = 0.45  # of a doctor's slots, so random booking finds room quickly
BASE_NURSES_PER_DEPARTMENT = 3


@dataclass
class Unit:
    """One department with its staff and devices, as the patient generator needs them."""

    spec: DepartmentSpec
    department: Department
    doctors: list[Doctor] = field(default_factory=list)
    nurses: list[Nurse] = field(default_factory=list)
    admin_staff: list[AdminStaff] = field(default_factory=list)
    equipment: list[MedicalEquipment] = field(default_factory=list)
    equipment_fees: dict[PydanticObjectId, int] = field(default_factory=dict)

    @property
    def id(self) -> PydanticObjectId:
        assert self.department.id is not None
        return self.department.id

    @property
    def bookable_equipment(self) -> list[MedicalEquipment]:
        usable = (EquipmentStatus.AVAILABLE, EquipmentStatus.IN_USE)
        return [e for e in self.equipment if e.status in usable]


@dataclass
class Facility:
    units: list[Unit]
    calendars: dict[PydanticObjectId, bytearray] = field(default_factory=dict)
    """Occupied slots of every doctor and device: one byte per slot of the demo window."""

    @property
    def by_code(self) -> dict[str, Unit]:
        return {u.spec.code: u for u in self.units}

    def calendar(self, id: PydanticObjectId) -> bytearray:
        found = self.calendars.get(id)
        if found is None:
            found = self.calendars[id] = bytearray(SLOT_COUNT)
        return found


def _department_shares() -> dict[str, float]:
    adult = sum(s.adult_weight for s in catalog.DEPARTMENTS)
    child = sum(s.child_weight for s in catalog.DEPARTMENTS)
    return {
        s.code: (1 - CHILD_SHARE) * s.adult_weight / adult + CHILD_SHARE * s.child_weight / child
        for s in catalog.DEPARTMENTS
    }


def doctors_needed(spec: DepartmentSpec, patients: int) -> int:
    """Enough doctors that ``patients`` fit into the window at the target utilisation."""
    load = patients * AVERAGE_SLOTS_PER_PATIENT * _department_shares()[spec.code]
    return max(len(spec.specialties), math.ceil(load / (SLOT_COUNT * TARGET_UTILISATION)))


class _Staffing:
    """Hands out staff numbers and unique e-mail addresses."""

    def __init__(self) -> None:
        self.doctors = 0
        self.nurses = 0
        self.admins = 0
        self.emails: set[str] = set()

    def contact(self, rng: random.Random, first: str, last: str) -> StaffContact:
        address = people.email(first, last, catalog.STAFF_EMAIL_DOMAIN)
        n = 2
        while address in self.emails:
            address = people.email(first, last, catalog.STAFF_EMAIL_DOMAIN, str(n))
            n += 1
        self.emails.add(address)
        return StaffContact(
            email=address, phone=f"{catalog.STAFF_PHONE} {rng.randrange(1000, 10000)}"
        )


def _person(rng: random.Random) -> tuple[str, str]:
    sex = rng.choice((Sex.FEMALE, Sex.MALE))
    return people.first_name(rng, sex), people.last_name(rng)


CITY_CENTRE = GeoPoint(latitude=52.5200, longitude=13.4050)  # Berlin, where the demo is
PRACTICE_RADIUS_KM = 15.0


def doctor_location(n: int) -> GeoPoint:
    """Where demo doctor ``n`` practises: within PRACTICE_RADIUS_KM of the city centre.

    Its own RNG per doctor, so adding locations shifts no other demo data, and every seed size
    puts the same doctor in the same place.
    """
    rng = random.Random(f"shms-demo/doctor-location/{n}")
    distance = PRACTICE_RADIUS_KM * math.sqrt(rng.random())  # uniform over the disc
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = math.degrees(distance * math.cos(bearing) / 6371.0088)
    east = math.degrees(distance * math.sin(bearing) / 6371.0088)
    dlon = east / math.cos(math.radians(CITY_CENTRE.latitude))  # a degree east is shorter here
    return GeoPoint(
        latitude=round(CITY_CENTRE.latitude + dlat, 5),
        longitude=round(CITY_CENTRE.longitude + dlon, 5),
    )


def _doctor(rng: random.Random, staffing: _Staffing, unit: Unit, specialty: str) -> Doctor:
    staffing.doctors += 1
    first, last = _person(rng)
    return Doctor(
        id=ids.doctor_id(staffing.doctors),
        first_name=first,
        last_name=last,
        department_id=unit.id,
        contact=staffing.contact(rng, first, last),
        specialty=specialty,
        licence_number=f"MD-{unit.spec.code}-{staffing.doctors:05d}",
        location=doctor_location(staffing.doctors),
        created_at=OPENED_AT,
        updated_at=OPENED_AT,
    )


def _nurse(rng: random.Random, staffing: _Staffing, unit: Unit) -> Nurse:
    staffing.nurses += 1
    first, last = _person(rng)
    return Nurse(
        id=ids.nurse_id(staffing.nurses),
        first_name=first,
        last_name=last,
        department_id=unit.id,
        contact=staffing.contact(rng, first, last),
        licence_number=f"RN-{staffing.nurses:06d}",
        ward=unit.spec.wards[staffing.nurses % len(unit.spec.wards)],
        created_at=OPENED_AT,
        updated_at=OPENED_AT,
    )


def _equipment(
    rng: random.Random, n: int, unit: Unit, spec: catalog.EquipmentSpec
) -> MedicalEquipment:
    commissioned = minutes(OPENED_AT + timedelta(days=rng.randrange(0, 700), hours=9))
    history = [
        EquipmentStatusChange(
            from_status=None,
            to_status=EquipmentStatus.AVAILABLE,
            reason="Commissioned",
            at=commissioned,
        )
    ]
    if rng.random() < 0.5:
        inspected = commissioned + timedelta(days=365)
        history += [
            EquipmentStatusChange(
                from_status=EquipmentStatus.AVAILABLE,
                to_status=EquipmentStatus.MAINTENANCE,
                reason="Annual safety inspection",
                at=inspected,
            ),
            EquipmentStatusChange(
                from_status=EquipmentStatus.MAINTENANCE,
                to_status=EquipmentStatus.AVAILABLE,
                reason="Inspection passed",
                at=inspected + timedelta(days=2),
            ),
        ]
    # The first device of each department is always bookable; the others vary.
    first = not unit.equipment
    roll = rng.random()
    status, reason = EquipmentStatus.AVAILABLE, None
    if not first and roll < 0.12:
        status, reason = EquipmentStatus.MAINTENANCE, "Scheduled calibration"
    elif not first and roll < 0.18:
        status, reason = EquipmentStatus.OUT_OF_SERVICE, "Fault reported by staff"
    elif roll > 0.8:
        status, reason = EquipmentStatus.IN_USE, f"Assigned to {unit.spec.wards[0]}"
    if reason is not None:
        history.append(
            EquipmentStatusChange(
                from_status=EquipmentStatus.AVAILABLE,
                to_status=status,
                reason=reason,
                at=minutes(
                    ANCHOR - timedelta(days=rng.randrange(1, 40), hours=rng.randrange(0, 9))
                ),
            )
        )
    return MedicalEquipment(
        id=ids.equipment_id(n),
        name=spec.name,
        equipment_type=spec.equipment_type,
        serial_number=f"{unit.spec.code}-{spec.code}-{n:05d}",
        manufacturer=spec.manufacturer,
        model=spec.model,
        department_id=unit.id,
        status=status,
        status_history=history,
        created_at=commissioned,
        updated_at=history[-1].at,
    )


def build_facility(patients: int) -> Facility:
    """Every department, staff member and device, sized for ``patients``; nothing is written."""
    rng = random.Random("shms-demo/facility")
    staffing = _Staffing()
    units: list[Unit] = []
    equipment_count = 0
    for n, spec in enumerate(catalog.DEPARTMENTS, start=1):
        unit = Unit(
            spec,
            Department(
                id=ids.department_id(n),
                name=spec.name,
                code=spec.code,
                description=spec.description,
                location=spec.location,
                created_at=OPENED_AT,
                updated_at=OPENED_AT,
            ),
        )
        units.append(unit)
        unit.doctors = [_doctor(rng, staffing, unit, s) for s in spec.specialties]
        unit.department.head_doctor_id = unit.doctors[0].id
        unit.nurses = [_nurse(rng, staffing, unit) for _ in range(BASE_NURSES_PER_DEPARTMENT)]
        for duties in catalog.ADMIN_DUTIES[spec.code]:
            staffing.admins += 1
            first, last = _person(rng)
            unit.admin_staff.append(
                AdminStaff(
                    id=ids.admin_staff_id(staffing.admins),
                    first_name=first,
                    last_name=last,
                    department_id=unit.id,
                    contact=staffing.contact(rng, first, last),
                    duties=list(duties),
                    created_at=OPENED_AT,
                    updated_at=OPENED_AT,
                )
            )
        for device in spec.equipment:
            for _ in range(2 if device.fee < 10000 else 1):
                equipment_count += 1
                made = _equipment(rng, equipment_count, unit, device)
                unit.equipment.append(made)
                unit.equipment_fees[ids.equipment_id(equipment_count)] = device.fee
    _add_staff_for_size(units, staffing, patients)
    return Facility(units)


def _add_staff_for_size(units: list[Unit], staffing: _Staffing, patients: int) -> None:
    """Extra doctors (and a nurse per two of them) after the base staff, from their own RNG."""
    rng = random.Random("shms-demo/facility-growth")
    for unit in units:
        base = len(unit.doctors)
        for i in range(doctors_needed(unit.spec, patients) - base):
            unit.doctors.append(_doctor(rng, staffing, unit, unit.spec.specialties[i % base]))
            if i % 2 == 1:
                unit.nurses.append(_nurse(rng, staffing, unit))
