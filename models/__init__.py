"""Beanie documents, one module per domain; relations are plain ObjectId references."""

from models.billing import BillingAccount
from models.clinical import Prescription, Treatment, TreatmentPlan
from models.departments import Department
from models.equipment import MedicalEquipment
from models.patients import Patient
from models.scheduling import Appointment
from models.staff import AdminStaff, Doctor, Nurse

DOCUMENT_MODELS = (
    Patient,
    Department,
    Doctor,
    Nurse,
    AdminStaff,
    Appointment,
    TreatmentPlan,
    Treatment,
    Prescription,
    MedicalEquipment,
    BillingAccount,
)

__all__ = [
    "DOCUMENT_MODELS",
    "AdminStaff",
    "Appointment",
    "BillingAccount",
    "Department",
    "Doctor",
    "MedicalEquipment",
    "Nurse",
    "Patient",
    "Prescription",
    "Treatment",
    "TreatmentPlan",
]
