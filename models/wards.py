"""Wards and their beds: where admitted patients lie.

A ward belongs to one department and has a type and a sex policy; its beds move through
``available -> occupied -> cleaning -> available`` (and ``blocked`` out of service and back),
each step one compare-and-set on the bed's status and version (``services/wards.py``,
``services/admissions.py``). A bed names its occupant's admission: claiming it is one
conditional update from ``available``, so two admissions can never hold one bed.

A claim is ``pending`` until the admission it was made for names the bed (an admission being
created, or a transfer in flight): the live board shows such a bed as occupied and incoming.
``claimed_at`` dates the claim, so one left behind by a crashed process can be recovered.

Who reads what (the declarations below): wards and beds are operational, for every staff
member and the dashboards; who lies in a bed is identity, for the patient's care team (nurses
of the ward get it through the admission), the bed's department, the front desk and admin.
"""

from __future__ import annotations

from enum import StrEnum

import pymongo
from pydantic import Field

from auth.policy import (
    ADMIN_ONLY,
    STAFF_ROLES,
    A,
    Action,
    C,
    D,
    R,
    S,
    declare,
    each,
    grant,
    group,
    row,
)
from auth.policy import Classification as Class
from models.base import Entity, Name, Ref, ShortText, UtcDatetime, utcnow


class WardType(StrEnum):
    GENERAL = "general"
    ICU = "icu"
    MATERNITY = "maternity"
    PAEDIATRIC = "paediatric"
    SURGICAL = "surgical"
    EMERGENCY_OBSERVATION = "emergency_observation"


class SexPolicy(StrEnum):
    MALE = "male"
    FEMALE = "female"
    MIXED = "mixed"


class BedStatus(StrEnum):
    AVAILABLE = "available"
    OCCUPIED = "occupied"
    CLEANING = "cleaning"
    BLOCKED = "blocked"


class Ward(Entity):
    name: Name
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_-]{1,15}$", description="Short unique code")
    department_id: Ref
    type: WardType = WardType.GENERAL
    sex_policy: SexPolicy = SexPolicy.MIXED
    capacity: int = Field(ge=0, le=500, description="Beds the ward is staffed for.")
    location: ShortText | None = None
    active: bool = True
    version: int = 0

    class Settings:
        name = "wards"
        indexes = [
            pymongo.IndexModel("code", unique=True, name="one_ward_per_code"),
            pymongo.IndexModel([("department_id", 1), ("_id", 1)]),
        ]


class Bed(Entity):
    ward_id: Ref
    department_id: Ref = Field(description="The ward's department (copied: boards and scopes).")
    label: str = Field(min_length=1, max_length=20, description="Unique within the ward.")
    status: BedStatus = BedStatus.AVAILABLE
    active: bool = True
    admission_id: Ref | None = Field(
        default=None, description="The admission holding the bed (occupied only)."
    )
    patient_id: Ref | None = Field(default=None, description="That admission's patient.")
    pending: bool = Field(
        default=False,
        description="Claimed for an admission that does not name the bed yet (incoming).",
    )
    claimed_at: UtcDatetime | None = None
    blocked_reason: ShortText | None = None
    status_at: UtcDatetime = Field(default_factory=utcnow)
    version: int = 0

    class Settings:
        name = "beds"
        indexes = [
            pymongo.IndexModel(
                [("ward_id", 1), ("label", 1)], unique=True, name="one_label_per_ward"
            ),
            pymongo.IndexModel([("department_id", 1), ("status", 1), ("_id", 1)]),
            pymongo.IndexModel([("ward_id", 1), ("status", 1), ("_id", 1)]),
            pymongo.IndexModel([("admission_id", 1)]),
            pymongo.IndexModel([("patient_id", 1)]),
        ]


# -- the policy --------------------------------------------------------------------------------

_STAFF_AND_BOARDS = each((*STAFF_ROLES, R.SERVICE), grant(A))
# A patient sees the wards (where they might lie) and their own bed.
_WARDS = {**_STAFF_AND_BOARDS, R.PATIENT: grant(A)}
_BEDS = {**_STAFF_AND_BOARDS, R.PATIENT: grant(S)}
# Who lies in a bed: the care team (ward nurses through the admission), the bed's department,
# the front desk (placing patients) and admin; not billing, compliance or dashboards.
_OCCUPANT = {
    R.ADMIN: grant(A),
    R.ADMIN_STAFF: grant(A),
    R.DOCTOR: grant(C, D),
    R.NURSE: grant(C, D),
}
_BED_OCCUPANT = {**_OCCUPANT, R.PATIENT: grant(S)}
_HOUSEKEEPING = {R.ADMIN: grant(A), R.ADMIN_STAFF: grant(A), R.NURSE: grant(D)}

WARD = declare(
    "Ward",
    Ward,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "name",
            "code",
            "departmentId",
            "department",
            "type",
            "sexPolicy",
            "capacity",
            "location",
            "active",
            "version",
            "beds",
            "createdAt",
            "updatedAt",
        ),
        _WARDS,
    ),
    actions={Action.CREATE: ADMIN_ONLY, Action.UPDATE: ADMIN_ONLY},
    department="department_id",
    refs=("department_id",),
    cached=True,
)

BED = declare(
    "Bed",
    Bed,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "label",
            "status",
            "statusAt",
            "active",
            "incoming",
            "claimedAt",
            "blockedReason",
            "version",
            "wardId",
            "ward",
            "departmentId",
            "department",
            "createdAt",
            "updatedAt",
        ),
        _BEDS,
    ),
    group(
        "occupant",
        Class.IDENTITY,
        ("patientId", "patient", "admissionId", "admission"),
        _BED_OCCUPANT,
    ),
    actions={
        Action.CREATE: ADMIN_ONLY,
        Action.UPDATE: ADMIN_ONLY,
        "block": _HOUSEKEEPING,
        "unblock": _HOUSEKEEPING,
        "markCleaned": _HOUSEKEEPING,
    },
    patient="patient_id",
    department="department_id",
    refs=("ward_id", "department_id", "patient_id", "admission_id"),
    cached=True,
    order=(("label", 1), ("_id", 1)),
)

# The live bed board (``cache/beds.py``): counts and beds of a ward or a department, for every
# staff member and the dashboards; who lies in each bed under the same rule as ``Bed``.
BED_BOARD = declare(
    "BedBoard",
    None,
    row(
        Class.OPERATIONAL,
        (
            "wardId",
            "departmentId",
            "updatedAt",
            "counts",
            "beds",
            "available",
            "occupied",
            "incoming",
            "cleaning",
            "blocked",
            "total",
        ),
        _STAFF_AND_BOARDS,
    ),
    graphql_types=("BedBoard", "BedBoardCounts"),
    inputs=("beds",),
)

BED_BOARD_ENTRY = declare(
    "BedBoardEntry",
    None,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "label",
            "status",
            "incoming",
            "statusAt",
            "blockedReason",
            "active",
            "version",
            "wardId",
            "departmentId",
        ),
        _STAFF_AND_BOARDS,
    ),
    group("occupant", Class.IDENTITY, ("patientId", "patient", "admissionId"), _OCCUPANT),
    patient="patient_id",
    department="department_id",
    inputs=("beds",),
)
