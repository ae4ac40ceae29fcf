"""Beanie documents, one module per domain; relations are plain ObjectId references."""

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

DOCUMENT_MODELS = (
    Patient,
    Department,
    Doctor,
    Nurse,
    AdminStaff,
    Appointment,
    Reservation,
    TreatmentPlan,
    Treatment,
    Prescription,
    MedicalEquipment,
    BillingAccount,
    Account,
    ServiceClient,
    RefreshToken,
    AccessGrant,
    AuditEvent,
    WorkingHours,
    CalendarException,
    AppointmentType,
    MaintenanceWindow,
    Notification,
    IdempotencyKey,
    PersistedOperation,
    SavedQuery,
    SavedQueryRun,
)

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
