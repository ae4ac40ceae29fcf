"""Demo sign-ins: one account per role, linked to fixed demo records, plus a dashboard client.

The credentials are published in the README, so they exist only for the demo: hashes use
cheap argon2 parameters (a first sign-in re-hashes with the real ones), the seed skips
accounts that already exist, and it refuses to run when ``SHMS_ENV=production``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from beanie import PydanticObjectId

from auth.passwords import DEMO_HASHER, hash_password
from auth.roles import Role
from config import get_settings
from demo import ids
from demo.clock import ANCHOR
from demo.privacy import PARTNER_CLIENT_ID, PARTNER_NAME
from models.accounts import Account, ServiceClient
from models.patients import Patient
from models.staff import AdminStaff, Doctor, Nurse

log = logging.getLogger(__name__)

_ACCOUNT_KIND = 0x20
"""Collection byte of demo account ids; ``demo.ids.Kind`` numbers the facility records."""


def account_id(n: int) -> PydanticObjectId:
    """Fixed id of demo account ``n``, built like ``demo.ids`` builds the facility's."""
    prefix = int(ids.ID_EPOCH.timestamp()).to_bytes(4, "big")
    return PydanticObjectId(prefix + bytes([_ACCOUNT_KIND]) + n.to_bytes(7, "big"))


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: Role
    patient_id: PydanticObjectId | None = None
    staff_id: PydanticObjectId | None = None
    staff_model: type[Doctor] | type[Nurse] | type[AdminStaff] | None = None


DEMO_ACCOUNTS = (
    DemoAccount("admin", "demo-admin-pass", Role.ADMIN),
    DemoAccount("doctor", "demo-doctor-pass", Role.DOCTOR, None, ids.doctor_id(1), Doctor),
    DemoAccount("nurse", "demo-nurse-pass", Role.NURSE, None, ids.nurse_id(1), Nurse),
    # admin_staff_id(1): front desk and scheduling in department 1 (Cardiology).
    DemoAccount(
        "frontdesk",
        "demo-frontdesk-pass",
        Role.ADMIN_STAFF,
        None,
        ids.admin_staff_id(1),
        AdminStaff,
    ),
    # admin_staff_id(8): the billing clerk of department 4 (Paediatrics).
    DemoAccount(
        "billing", "demo-billing-pass", Role.BILLING, None, ids.admin_staff_id(8), AdminStaff
    ),
    DemoAccount("patient", "demo-patient-pass", Role.PATIENT, ids.patient_id(1)),
    DemoAccount("analyst", "demo-analyst-pass", Role.ANALYST),
    DemoAccount("compliance", "demo-compliance-pass", Role.COMPLIANCE),
    DemoAccount("labtech", "demo-labtech-pass", Role.LAB_TECHNICIAN),
    # doctor_id(8): Diagnostic Radiology, head of Radiology.
    DemoAccount(
        "radiologist", "demo-radiologist-pass", Role.RADIOLOGIST, None, ids.doctor_id(8), Doctor
    ),
    DemoAccount("pharmacist", "demo-pharmacist-pass", Role.PHARMACIST),
    # A second pharmacist: controlled substances need another person's confirmation.
    DemoAccount("pharmacist2", "demo-pharmacist2-pass", Role.PHARMACIST),
    DemoAccount("storekeeper", "demo-storekeeper-pass", Role.STOREKEEPER),
)
"""Account ``n`` (from 1) has ``account_id(n)``."""

DEMO_CLIENT_ID = "dashboard"
DEMO_CLIENT_SECRET = "demo-dashboard-secret"
PARTNER_CLIENT_SECRET = "demo-st-elsewhere-secret"
DEMO_CLIENTS = (
    (DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, "Demo dashboard"),
    (PARTNER_CLIENT_ID, PARTNER_CLIENT_SECRET, PARTNER_NAME),  # receives a shared record
)


async def _account(n: int, spec: DemoAccount) -> Account | None:
    """The account document for ``spec``, or ``None`` when its linked record is not seeded."""
    department_id = None
    display_name = spec.username.title()
    if spec.staff_model is not None and spec.staff_id is not None:
        staff = await spec.staff_model.get(spec.staff_id)
        if staff is None:
            return None
        department_id = staff.department_id
        display_name = f"{staff.first_name} {staff.last_name}"
    if spec.patient_id is not None:
        patient = await Patient.get(spec.patient_id)
        if patient is None:
            return None
        display_name = f"{patient.first_name} {patient.last_name}"
    return Account(
        id=account_id(n),
        username=spec.username,
        password_hash=await asyncio.to_thread(hash_password, spec.password, DEMO_HASHER),
        roles=[spec.role],
        display_name=display_name,
        patient_id=spec.patient_id,
        staff_id=spec.staff_id,
        department_id=department_id,
        created_at=ANCHOR,
        updated_at=ANCHOR,
    )


async def seed_accounts() -> int:
    """Add the demo accounts and service clients (the ``dashboard``, the ``st-elsewhere``
    partner hospital) that are missing; returns how many."""
    if get_settings().shms_env == "production":
        log.warning("not creating demo accounts with published passwords in production")
        return 0
    names = [spec.username for spec in DEMO_ACCOUNTS]
    existing = {a.username for a in await Account.find({"username": {"$in": names}}).to_list()}
    accounts = [
        account
        for n, spec in enumerate(DEMO_ACCOUNTS, start=1)
        if spec.username not in existing and (account := await _account(n, spec)) is not None
    ]
    if accounts:
        await Account.insert_many(accounts)
    added = len(accounts)
    for client_id, secret, name in DEMO_CLIENTS:
        if await ServiceClient.find_one({"client_id": client_id}) is not None:
            continue
        secret_hash = await asyncio.to_thread(hash_password, secret, DEMO_HASHER)
        await ServiceClient(
            client_id=client_id,
            secret_hash=secret_hash,
            roles=[Role.SERVICE],
            name=name,
            created_at=ANCHOR,
            updated_at=ANCHOR,
        ).insert()
        added += 1
    return added
