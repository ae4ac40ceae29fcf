"""The roles SHMS knows. Accounts carry roles; the policy table decides what each may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    DOCTOR = "doctor"
    NURSE = "nurse"
    ADMIN_STAFF = "admin_staff"  # the front desk
    BILLING = "billing"
    PATIENT = "patient"
    ANALYST = "analyst"
    SERVICE = "service"  # machine clients such as dashboards (client credentials)
    COMPLIANCE = "compliance"  # reads the audit trail
    LAB_TECHNICIAN = "lab_technician"  # collects and receives samples, enters lab results
    RADIOLOGIST = "radiologist"  # performs imaging studies and reports them (a doctor's account)
    PHARMACIST = "pharmacist"  # the drug master, pharmacy stock, dispensing
    STOREKEEPER = "storekeeper"  # non-drug supplies: receiving, issuing, reordering


CLINICIANS = frozenset({Role.DOCTOR, Role.NURSE})
