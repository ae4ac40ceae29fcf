"""The one access policy: role x entity x field group x read/write, with relationship conditions.

Everything that decides access — list filters, row checks, field checks, mutation checks, the
``viewer`` query and the matrix in ``docs/access-policy.md`` — reads these tables, so queries,
mutations and subscriptions cannot disagree.

How to read it: a viewer relates to a row in one or more ways (``Rel``): ``ANY`` always holds;
``DEPARTMENT`` when the row belongs to the viewer's department (for a patient: they were seen
there); ``CARE`` when the viewer treats the patient (an appointment or plan with them, or a live
break-the-glass grant); ``SELF`` when it is the viewer's own record. A grant lists the relations
under which a role may use a field group (or action); no grant means never.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from auth.roles import Role


class EntityKind(StrEnum):
    PATIENT = "Patient"
    APPOINTMENT = "Appointment"
    TREATMENT_PLAN = "TreatmentPlan"
    TREATMENT = "Treatment"
    PRESCRIPTION = "Prescription"
    BILLING_ACCOUNT = "BillingAccount"
    DEPARTMENT = "Department"
    DOCTOR = "Doctor"
    NURSE = "Nurse"
    ADMIN_STAFF = "AdminStaff"
    EQUIPMENT = "MedicalEquipment"
    AUDIT_EVENT = "AuditEvent"
    CALENDAR = "Calendar"  # a doctor's working hours and leave; the row is the Doctor
    APPOINTMENT_TYPE = "AppointmentType"
    MAINTENANCE_WINDOW = "MaintenanceWindow"
    AVAILABILITY = "Availability"  # free slots of a doctor
    NOTIFICATION = "Notification"
    ANALYTICS = "Analytics"  # aggregates; MASKED means small groups are suppressed
    SAVED_QUERY = "SavedQuery"  # SELF: its author; who may run one is its allowedRoles


PATIENT_DATA = frozenset(
    {
        EntityKind.PATIENT,
        EntityKind.APPOINTMENT,
        EntityKind.TREATMENT_PLAN,
        EntityKind.TREATMENT,
        EntityKind.PRESCRIPTION,
        EntityKind.BILLING_ACCOUNT,
    }
)


class Rel(StrEnum):
    ANY = "any"
    DEPARTMENT = "department"
    CARE = "care"
    SELF = "self"


class Access(StrEnum):
    FULL = "full"
    MASKED = "masked"
    NONE = "none"


@dataclass(frozen=True)
class Grant:
    relations: frozenset[Rel]
    access: Access = Access.FULL

    def holds(self, rels: Iterable[Rel]) -> bool:
        return not self.relations.isdisjoint(rels)


def grant(*relations: Rel, access: Access = Access.FULL) -> Grant:
    return Grant(frozenset(relations), access)


A, D, C, S = Rel.ANY, Rel.DEPARTMENT, Rel.CARE, Rel.SELF
R = Role
ROW = "row"
"""The group that decides whether a row is visible at all; its fields are the ungrouped ones."""

Rules = Mapping[Role, Grant]

STAFF_ROLES = (R.ADMIN, R.ADMIN_STAFF, R.BILLING, R.DOCTOR, R.NURSE, R.COMPLIANCE)
EVERYONE = (*STAFF_ROLES, R.PATIENT, R.ANALYST, R.SERVICE)


def each(roles: Iterable[Role], g: Grant) -> dict[Role, Grant]:
    return {role: g for role in roles}


SCHEDULERS = (R.ADMIN, R.ADMIN_STAFF, R.DOCTOR, R.NURSE)
"""Who reads calendars: the front desk, clinicians and admin."""


# Field groups: GraphQL field names per guarded group. Fields not listed follow the row.
FIELDS: dict[EntityKind, dict[str, tuple[str, ...]]] = {
    EntityKind.PATIENT: {
        ROW: ("id", "firstName", "lastName", "dateOfBirth", "sex", "createdAt", "updatedAt"),
        "contact": ("contact", "emergencyContact"),
        "nationalId": ("nationalId",),
        "clinical": ("allergies", "medicalHistory", "treatmentPlans", "prescriptions"),
        "schedule": ("appointments", "primaryDoctor", "primaryDoctorId"),
        "billing": ("billingAccount",),
    },
    EntityKind.APPOINTMENT: {
        ROW: (
            "id",
            "startAt",
            "endAt",
            "status",
            "doctor",
            "doctorId",
            "department",
            "departmentId",
            "equipment",
            "equipmentId",
            "rescheduleHistory",
            "cancellation",
            "createdAt",
            "updatedAt",
        ),
        "patient": ("patient", "patientId"),
        "reason": ("reason",),
        "notes": ("notes",),
    },
    EntityKind.BILLING_ACCOUNT: {
        ROW: (
            "id",
            "currency",
            "patient",
            "patientId",
            "charges",
            "payments",
            "totalCharged",
            "totalPaid",
            "balance",
            "createdAt",
            "updatedAt",
        ),
        "insurance": ("insurance",),
    },
    EntityKind.DOCTOR: {
        ROW: (
            "id",
            "firstName",
            "lastName",
            "specialty",
            "department",
            "departmentId",
            "active",
            "createdAt",
            "updatedAt",
        ),
        "staffDetails": ("contact", "licenceNumber"),
        "schedule": ("appointments",),
    },
    EntityKind.NURSE: {
        ROW: (
            "id",
            "firstName",
            "lastName",
            "department",
            "departmentId",
            "ward",
            "active",
            "createdAt",
            "updatedAt",
        ),
        "staffDetails": ("contact", "licenceNumber"),
    },
    EntityKind.ADMIN_STAFF: {
        ROW: (
            "id",
            "firstName",
            "lastName",
            "department",
            "departmentId",
            "duties",
            "active",
            "createdAt",
            "updatedAt",
        ),
        "staffDetails": ("contact",),
    },
}

CLINICAL_ROW: Rules = {
    R.DOCTOR: grant(C),
    R.NURSE: grant(C, D),
    R.PATIENT: grant(S),
}
STAFF_DETAILS: Rules = each(STAFF_ROLES, grant(A))

READ: dict[EntityKind, dict[str, Rules]] = {
    EntityKind.PATIENT: {
        ROW: {
            **each((R.ADMIN, R.ADMIN_STAFF, R.BILLING), grant(A)),
            R.DOCTOR: grant(C, D),
            R.NURSE: grant(C, D),
            R.PATIENT: grant(S),
        },
        "contact": {
            **each((R.ADMIN, R.ADMIN_STAFF, R.BILLING), grant(A)),
            R.DOCTOR: grant(C),
            R.NURSE: grant(C, D),
            R.PATIENT: grant(S),
        },
        "nationalId": {
            R.ADMIN: grant(A),
            R.ADMIN_STAFF: grant(A, access=Access.MASKED),
            R.BILLING: grant(A, access=Access.MASKED),
            R.DOCTOR: grant(C, access=Access.MASKED),
            R.NURSE: grant(C, D, access=Access.MASKED),
            R.PATIENT: grant(S),
        },
        "clinical": CLINICAL_ROW,
        "schedule": {
            **each((R.ADMIN, R.ADMIN_STAFF, R.BILLING), grant(A)),
            R.DOCTOR: grant(C, D),
            R.NURSE: grant(C, D),
            R.PATIENT: grant(S),
        },
        "billing": {R.BILLING: grant(A), R.PATIENT: grant(S)},
    },
    EntityKind.APPOINTMENT: {
        ROW: {
            **each((R.ADMIN, R.ADMIN_STAFF, R.BILLING, R.ANALYST, R.SERVICE), grant(A)),
            R.DOCTOR: grant(C, D),
            R.NURSE: grant(C, D),
            R.PATIENT: grant(S),
        },
        "patient": {
            **each((R.ADMIN, R.ADMIN_STAFF, R.BILLING), grant(A)),
            R.DOCTOR: grant(C, D),
            R.NURSE: grant(C, D),
            R.PATIENT: grant(S),
        },
        "reason": {
            **each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
            R.DOCTOR: grant(C, D),
            R.NURSE: grant(C, D),
            R.PATIENT: grant(S),
        },
        "notes": {R.DOCTOR: grant(C), R.NURSE: grant(C, D), R.PATIENT: grant(S)},
    },
    EntityKind.TREATMENT_PLAN: {ROW: CLINICAL_ROW},
    EntityKind.TREATMENT: {ROW: CLINICAL_ROW},
    EntityKind.PRESCRIPTION: {ROW: CLINICAL_ROW},
    EntityKind.BILLING_ACCOUNT: {
        ROW: {R.BILLING: grant(A), R.PATIENT: grant(S)},
        "insurance": {R.BILLING: grant(A), R.PATIENT: grant(S)},
    },
    EntityKind.DEPARTMENT: {ROW: each(EVERYONE, grant(A))},
    EntityKind.DOCTOR: {
        ROW: each(EVERYONE, grant(A)),
        "staffDetails": STAFF_DETAILS,
        "schedule": {**each((R.ADMIN, R.ADMIN_STAFF, R.DOCTOR, R.NURSE), grant(A))},
    },
    EntityKind.NURSE: {ROW: each(STAFF_ROLES, grant(A)), "staffDetails": STAFF_DETAILS},
    EntityKind.ADMIN_STAFF: {ROW: each(STAFF_ROLES, grant(A)), "staffDetails": STAFF_DETAILS},
    EntityKind.EQUIPMENT: {
        ROW: each(
            # Patients too: their appointments name the device they are booked on.
            (R.ADMIN, R.ADMIN_STAFF, R.BILLING, R.DOCTOR, R.NURSE, R.ANALYST, R.SERVICE, R.PATIENT),
            grant(A),
        )
    },
    EntityKind.AUDIT_EVENT: {ROW: each((R.ADMIN, R.COMPLIANCE), grant(A))},
    EntityKind.CALENDAR: {ROW: each(SCHEDULERS, grant(A))},
    EntityKind.APPOINTMENT_TYPE: {ROW: each((*SCHEDULERS, R.PATIENT), grant(A))},
    EntityKind.MAINTENANCE_WINDOW: {ROW: each(SCHEDULERS, grant(A))},
    # Patients book their own visits, so they may look for free slots too.
    EntityKind.AVAILABILITY: {ROW: each((*SCHEDULERS, R.PATIENT), grant(A))},
    # Recipients only: a patient their own messages, a doctor (by staff id) theirs.
    EntityKind.NOTIFICATION: {ROW: {R.PATIENT: grant(S), R.DOCTOR: grant(S)}},
    # Aggregates: complete for admin; analysts get them de-identified (small-cell suppression).
    EntityKind.ANALYTICS: {ROW: {R.ADMIN: grant(A), R.ANALYST: grant(A, access=Access.MASKED)}},
    # Any role may be among a saved query's allowedRoles (services.saved_queries filters by
    # them); its run log is for admin and compliance.
    EntityKind.SAVED_QUERY: {
        ROW: each(EVERYONE, grant(A)),
        "runs": each((R.ADMIN, R.COMPLIANCE), grant(A)),
    },
}


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    SCHEDULE = "schedule"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    RECORD_TREATMENT = "recordTreatment"
    CHANGE_STATUS = "changeStatus"
    ALLOCATE = "allocate"
    CHARGE = "charge"
    PAY = "pay"
    BREAK_GLASS = "breakTheGlass"
    CHECK_IN = "checkIn"
    COMPLETE = "complete"
    MARK_NO_SHOW = "markNoShow"


ADMIN_ONLY: Rules = {R.ADMIN: grant(A)}
# Booking makes the booked doctor part of the patient's care team, so a clinician may book only
# for a patient they already treat (or, for nurses, one of their department): otherwise a
# doctor could book themselves to open any chart. New patients are booked by the front desk.
FRONT_DESK_OR_CLINICIAN: Rules = {
    **each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
    R.DOCTOR: grant(C),
    R.NURSE: grant(C, D),
    R.PATIENT: grant(S),
}
# The visit itself (arrival, outcome) is recorded by the front desk or the patient's clinicians,
# with the same relation rules as booking; never by the patient.
FRONT_DESK_OR_CARE_TEAM: Rules = {
    **each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
    R.DOCTOR: grant(C),
    R.NURSE: grant(C, D),
}

WRITE: dict[EntityKind, dict[str, Rules]] = {
    EntityKind.PATIENT: {
        Action.CREATE: each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
        # Updates are decided per field group: see WRITE_FIELDS.
        Action.BREAK_GLASS: each((R.DOCTOR, R.NURSE), grant(A)),
    },
    EntityKind.APPOINTMENT: {
        Action.SCHEDULE: FRONT_DESK_OR_CLINICIAN,
        Action.RESCHEDULE: FRONT_DESK_OR_CLINICIAN,
        Action.CANCEL: FRONT_DESK_OR_CLINICIAN,
        Action.CHECK_IN: FRONT_DESK_OR_CARE_TEAM,
        Action.COMPLETE: {R.DOCTOR: grant(C), R.NURSE: grant(C, D)},
        Action.MARK_NO_SHOW: FRONT_DESK_OR_CARE_TEAM,
    },
    EntityKind.TREATMENT_PLAN: {
        Action.CREATE: {R.DOCTOR: grant(C)},
        Action.UPDATE: {R.DOCTOR: grant(C)},
        Action.RECORD_TREATMENT: {R.DOCTOR: grant(C), R.NURSE: grant(C, D)},
    },
    EntityKind.PRESCRIPTION: {
        Action.CREATE: {R.DOCTOR: grant(C)},
        Action.UPDATE: {R.DOCTOR: grant(C)},
        Action.CHANGE_STATUS: {R.DOCTOR: grant(C), R.NURSE: grant(C, D)},
    },
    EntityKind.BILLING_ACCOUNT: {
        Action.CREATE: {R.BILLING: grant(A)},
        Action.CHARGE: {R.BILLING: grant(A)},
        Action.PAY: {R.BILLING: grant(A)},
        Action.UPDATE: {R.BILLING: grant(A), R.PATIENT: grant(S)},  # insurance details
    },
    EntityKind.DEPARTMENT: {Action.CREATE: ADMIN_ONLY, Action.UPDATE: ADMIN_ONLY},
    EntityKind.DOCTOR: {Action.CREATE: ADMIN_ONLY, Action.UPDATE: ADMIN_ONLY},
    EntityKind.NURSE: {Action.CREATE: ADMIN_ONLY, Action.UPDATE: ADMIN_ONLY},
    EntityKind.ADMIN_STAFF: {Action.CREATE: ADMIN_ONLY, Action.UPDATE: ADMIN_ONLY},
    EntityKind.EQUIPMENT: {
        Action.CREATE: ADMIN_ONLY,
        Action.ALLOCATE: ADMIN_ONLY,
        Action.CHANGE_STATUS: {R.ADMIN: grant(A), R.DOCTOR: grant(D), R.NURSE: grant(D)},
    },
    # A doctor keeps their own template and leave (the row is the Doctor, so SELF is them);
    # facility-wide holidays have no doctor row, so only admin may set them.
    EntityKind.CALENDAR: {Action.UPDATE: {R.ADMIN: grant(A), R.DOCTOR: grant(S)}},
    EntityKind.APPOINTMENT_TYPE: {Action.CREATE: ADMIN_ONLY},
    EntityKind.MAINTENANCE_WINDOW: {Action.SCHEDULE: ADMIN_ONLY, Action.CANCEL: ADMIN_ONLY},
    # Analysts and admins save queries; a new version, or deleting one, is for its author
    # (SELF) or an admin.
    EntityKind.SAVED_QUERY: {
        Action.CREATE: each((R.ADMIN, R.ANALYST), grant(A)),
        Action.UPDATE: {R.ADMIN: grant(A), R.ANALYST: grant(S)},
    },
}

# Patient updates, per group of input fields (snake_case, as services receive them).
WRITE_FIELDS: dict[str, tuple[tuple[str, ...], Rules]] = {
    "identity": (
        ("first_name", "last_name", "date_of_birth", "sex", "national_id", "primary_doctor_id"),
        each((R.ADMIN, R.ADMIN_STAFF), grant(A)),
    ),
    "contact": (
        ("contact", "emergency_contact"),
        {**each((R.ADMIN, R.ADMIN_STAFF), grant(A)), R.PATIENT: grant(S)},
    ),
    "clinical": (
        ("allergies", "medical_history"),
        {R.DOCTOR: grant(C), R.NURSE: grant(C, D)},
    ),
}


def best(rules: Rules, roles: Iterable[Role], rels: Iterable[Rel]) -> Access:
    """The widest access any of ``roles`` gets under ``rels``."""
    found = Access.NONE
    held = frozenset(rels)
    for role in roles:
        g = rules.get(role)
        if g is not None and g.holds(held):
            if g.access == Access.FULL:
                return Access.FULL
            found = Access.MASKED
    return found


def relations_for(rules: Rules, roles: Iterable[Role]) -> frozenset[Rel]:
    """Every relation under which any of ``roles`` is granted ``rules``."""
    out: set[Rel] = set()
    for role in roles:
        g = rules.get(role)
        if g is not None:
            out |= g.relations
    return frozenset(out)


def group_of(entity: EntityKind, field: str) -> str:
    for group, names in FIELDS.get(entity, {}).items():
        if field in names:
            return group
    return ROW
