"""Per-request loaders. Build a fresh set for every request (and every subscription event)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from auth.policy import EntityKind as K
from cache import runtime
from cache.documents import DocumentCache
from loaders.base import ById, ChildPages, Scope
from models import (
    AdminStaff,
    Appointment,
    BillingAccount,
    Department,
    Doctor,
    MedicalEquipment,
    Nurse,
    Patient,
    Prescription,
    Treatment,
    TreatmentPlan,
)
from services.pagination import ASC, BY_ID

BY_START = (("start_at", ASC), ("_id", ASC))
BY_PERFORMED = (("performed_at", ASC), ("_id", ASC))


class Loaders:
    """Every relation the schema resolves, named ``<target>_by_<key>`` after the saleor habit."""

    def __init__(
        self,
        scope: Callable[[K], Awaitable[dict[str, Any]]] | None = None,
        cache: DocumentCache | None = None,
    ) -> None:
        """``scope`` gives the caller's row filter per entity; nested lists apply it. ``cache``
        defaults to the one the app installed (``cache.runtime``), if any."""
        if cache is None:
            installed = runtime.current().cache
            cache = installed if isinstance(installed, DocumentCache) else None

        def of(kind: K) -> Scope:
            async def scoped() -> dict[str, Any]:
                return await scope(kind) if scope is not None else {}

            return scoped

        self.patient_by_id = ById(Patient, cache=cache)
        self.department_by_id = ById(Department, cache=cache)
        self.doctor_by_id = ById(Doctor, cache=cache)
        self.nurse_by_id = ById(Nurse, cache=cache)
        self.admin_staff_by_id = ById(AdminStaff, cache=cache)
        self.appointment_by_id = ById(Appointment, cache=cache)
        self.treatment_plan_by_id = ById(TreatmentPlan, cache=cache)
        self.treatment_by_id = ById(Treatment, cache=cache)
        self.prescription_by_id = ById(Prescription, cache=cache)
        self.equipment_by_id = ById(MedicalEquipment, cache=cache)
        self.billing_account_by_id = ById(BillingAccount, cache=cache)

        self.appointments_by_patient = ChildPages(
            Appointment, "patient_id", BY_START, of(K.APPOINTMENT)
        )
        self.appointments_by_doctor = ChildPages(
            Appointment, "doctor_id", BY_START, of(K.APPOINTMENT)
        )
        self.appointments_by_equipment = ChildPages(
            Appointment, "equipment_id", BY_START, of(K.APPOINTMENT)
        )
        self.doctors_by_department = ChildPages(Doctor, "department_id", BY_ID, of(K.DOCTOR))
        self.nurses_by_department = ChildPages(Nurse, "department_id", BY_ID, of(K.NURSE))
        self.admin_staff_by_department = ChildPages(
            AdminStaff, "department_id", BY_ID, of(K.ADMIN_STAFF)
        )
        self.equipment_by_department = ChildPages(
            MedicalEquipment, "department_id", BY_ID, of(K.EQUIPMENT)
        )
        self.treatment_plans_by_patient = ChildPages(
            TreatmentPlan, "patient_id", BY_ID, of(K.TREATMENT_PLAN)
        )
        self.treatments_by_plan = ChildPages(Treatment, "plan_id", BY_PERFORMED, of(K.TREATMENT))
        self.prescriptions_by_patient = ChildPages(
            Prescription, "patient_id", BY_ID, of(K.PRESCRIPTION)
        )
        self.billing_account_by_patient = ById(BillingAccount, "patient_id")
