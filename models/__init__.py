"""Beanie documents, one module per domain; relations are plain ObjectId references.

Every module of this package is imported here, so each one's documents are initialised and its
entity declarations registered (``auth.policy.REGISTRY``) without a list to edit; the names
re-exported below are a convenience for callers, not a registry.
"""

import importlib
import pkgutil

from beanie import Document

from models.accounts import Account, RefreshToken, ServiceClient
from models.audit import AuditEvent
from models.billing import BillingAccount
from models.calendars import AppointmentType, CalendarException, MaintenanceWindow, WorkingHours
from models.clinical import Prescription, Treatment, TreatmentPlan
from models.departments import Department
from models.equipment import MedicalEquipment
from models.grants import AccessGrant
from models.idempotency import IdempotencyKey
from models.notifications import Notification
from models.patients import Patient
from models.persisted import PersistedOperation
from models.saved_queries import SavedQuery, SavedQueryRun
from models.scheduling import Appointment, Reservation
from models.staff import AdminStaff, Doctor, Nurse


def _documents() -> tuple[type[Document], ...]:
    """Every collection-backed document defined in this package, in a stable order."""
    found: dict[str, type[Document]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Document)
                and value.__module__ == module.__name__
                and getattr(getattr(value, "Settings", None), "name", None)
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return tuple(found[k] for k in sorted(found))


DOCUMENT_MODELS = _documents()

__all__ = [
    "DOCUMENT_MODELS",
    "AccessGrant",
    "Account",
    "AdminStaff",
    "Appointment",
    "AppointmentType",
    "AuditEvent",
    "BillingAccount",
    "CalendarException",
    "Department",
    "Doctor",
    "IdempotencyKey",
    "MaintenanceWindow",
    "MedicalEquipment",
    "Notification",
    "Nurse",
    "Patient",
    "PersistedOperation",
    "Prescription",
    "RefreshToken",
    "Reservation",
    "SavedQuery",
    "SavedQueryRun",
    "ServiceClient",
    "Treatment",
    "TreatmentPlan",
    "WorkingHours",
]
