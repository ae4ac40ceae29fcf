"""Legal holds: facts that keep a patient's data from being erased while they last.

Erasure (``services.erasure``) is refused with ``CONFLICT`` (reason ``LEGAL_HOLD``) while any
hold named in ``SHMS_ERASURE_HOLDS`` applies. Each hold is one small check answering with what
holds it (the records' ids, never their content), so the refusal can say what to settle first:
money still owed either way, a claim the insurer has not closed, care still going on or booked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bson import ObjectId

from config import ERASURE_HOLDS
from models.admissions import Admission, AdmissionStatus
from models.base import utcnow
from models.billing import BillingAccount
from models.emergency import OPEN_STATUSES, EmergencyVisit
from models.insurance import Claim, ClaimStatus
from models.scheduling import ACTIVE_APPOINTMENT_STATUSES, Appointment
from models.theatre import ACTIVE_SURGERY_STATUSES, SurgeryBooking

CLOSED_CLAIMS = (ClaimStatus.CLOSED, ClaimStatus.VOID)


@dataclass(frozen=True)
class Hold:
    """One applying hold: its name and the records that make it apply."""

    name: str
    records: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.name} ({', '.join(self.records)})"


Check = Callable[[ObjectId], Awaitable[list[ObjectId]]]


async def open_balance(patient_id: ObjectId) -> list[ObjectId]:
    """A billing account that does not balance to zero: owed by the patient or the insurer,
    or a credit still to refund."""
    accounts = await BillingAccount.find({"patient_id": patient_id}).to_list()
    return [a.id for a in accounts if a.id is not None and a.balance != 0]


async def open_claim(patient_id: ObjectId) -> list[ObjectId]:
    claims = await Claim.find(
        {"patient_id": patient_id, "status": {"$nin": [s.value for s in CLOSED_CLAIMS]}}
    ).to_list()
    return [c.id for c in claims if c.id is not None]


async def active_admission(patient_id: ObjectId) -> list[ObjectId]:
    found = await Admission.find(
        {"patient_id": patient_id, "status": AdmissionStatus.ACTIVE.value}
    ).to_list()
    return [a.id for a in found if a.id is not None]


async def open_emergency_visit(patient_id: ObjectId) -> list[ObjectId]:
    found = await EmergencyVisit.find(
        {"patient_id": patient_id, "status": {"$in": [s.value for s in OPEN_STATUSES]}}
    ).to_list()
    return [v.id for v in found if v.id is not None]


async def upcoming_appointment(patient_id: ObjectId) -> list[ObjectId]:
    """Booked care not yet over: cancel it (freeing its slots, telling the clinic) first."""
    found = await Appointment.find(
        {
            "patient_id": patient_id,
            "status": {"$in": [s.value for s in ACTIVE_APPOINTMENT_STATUSES]},
            "end_at": {"$gt": utcnow()},
        }
    ).to_list()
    return [a.id for a in found if a.id is not None]


async def upcoming_surgery(patient_id: ObjectId) -> list[ObjectId]:
    found = await SurgeryBooking.find(
        {"patient_id": patient_id, "status": {"$in": [s.value for s in ACTIVE_SURGERY_STATUSES]}}
    ).to_list()
    return [b.id for b in found if b.id is not None]


CHECKS: dict[str, Check] = {
    "open_balance": open_balance,
    "open_claim": open_claim,
    "active_admission": active_admission,
    "open_emergency_visit": open_emergency_visit,
    "upcoming_appointment": upcoming_appointment,
    "upcoming_surgery": upcoming_surgery,
}
assert tuple(CHECKS) == ERASURE_HOLDS, "config.ERASURE_HOLDS must name exactly these checks"


async def applying(patient_id: ObjectId, names: Sequence[str]) -> list[Hold]:
    """The configured holds that apply to the patient now, in configuration order."""
    out = []
    for name in names:
        records = await CHECKS[name](patient_id)
        if records:
            out.append(Hold(name, tuple(str(r) for r in records)))
    return out
