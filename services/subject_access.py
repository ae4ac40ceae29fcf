"""Everything SHMS holds about one patient (GDPR Art. 15), as one JSON document.

The collections come from the declared domain, the same derivation erasure uses
(``services.erasure_plan.targets``): a new module's documents about a patient are in the export
without an edit here. Beside them: the patient document, their accounts (without credentials),
and the audit trail about them, which names every recipient of their data (who read or changed
what, when). No access decision is made here (``routes.patient_export`` decides and audits).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from beanie.odm.enums import SortDirection
from bson import ObjectId

import db
from errors import NotFound
from models.accounts import Account
from models.audit import AuditEvent
from models.base import utcnow
from models.erasure import ErasureRequest
from models.patients import Patient
from models.trusted import trusted
from services.erasure import HANDLED_ELSEWHERE
from services.erasure_plan import targets

MAX_ROWS_PER_KIND = 10_000
MAX_AUDIT_EVENTS = 10_000
"""The newest audit events about the patient in one export (a bound, not a filter)."""
SECRETS = frozenset({"password_hash", "totp_secret", "totp_pending_secret", "totp_last_step"})
INTERNAL = frozenset({"search_tokens", "care", "care_revision", "revision_id"})
"""Derived bookkeeping, not data about the person."""
AUDIT_FIELDS = (
    "at", "actor_subject", "actor_roles", "action", "outcome", "entity", "entity_ids",
    "fields", "withheld", "reason", "break_glass", "operation",
)  # fmt: skip


@dataclass
class Export:
    document: dict[str, Any]
    rows: dict[str, list[Any]] = field(default_factory=dict)
    """Kind -> the documents exported, for the audit trail."""


def _plain(doc: Any, drop: Iterable[str] = ()) -> dict[str, Any]:
    dumped: dict[str, Any] = doc.model_dump(mode="json")
    for name in (*INTERNAL, *drop):
        dumped.pop(name, None)
    return dumped


async def collect(patient_id: ObjectId) -> Export:
    raw = await db.collection(Patient).find_one({"_id": patient_id})
    if raw is None:
        raise NotFound("Patient", str(patient_id))
    patient = trusted(Patient, raw)
    out = Export({"patient": _plain(patient)}, {"Patient": [patient]})
    records: dict[str, list[dict[str, Any]]] = {}
    for target in sorted(targets(HANDLED_ELSEWHERE), key=lambda t: t.declaration.kind):
        cursor = (
            db.collection(target.model)
            .find({target.selector: patient_id})
            .sort("_id", 1)
            .limit(MAX_ROWS_PER_KIND)
        )
        docs = [trusted(target.model, r) async for r in cursor]
        if docs:
            records[target.declaration.kind] = [_plain(d) for d in docs]
            out.rows[target.declaration.kind] = docs
    accounts = await Account.find({"patient_id": patient_id}).to_list()
    if accounts:
        out.rows["Account"] = accounts
    erasure = await ErasureRequest.find_one({"patient_id": patient_id})
    events = (
        await AuditEvent.find({"patient_ids": patient_id})
        .sort([("at", SortDirection.DESCENDING), ("_id", SortDirection.DESCENDING)])
        .limit(MAX_AUDIT_EVENTS)
        .to_list()
    )
    recipients: dict[str, set[str]] = {}
    for event in events:
        recipients.setdefault(event.actor_subject, set()).update(event.actor_roles)
    out.document.update(
        {
            "exportedAt": utcnow().isoformat(),
            "patientId": str(patient_id),
            "records": records,
            "accounts": [_plain(a, SECRETS) for a in accounts],
            "erasure": _plain(erasure) if erasure is not None else None,
            "recipients": [
                {"subject": subject, "roles": sorted(roles)}
                for subject, roles in sorted(recipients.items())
            ],
            "auditEvents": [
                {"id": str(e.id), **e.model_dump(mode="json", include=set(AUDIT_FIELDS))}
                for e in events
            ],
        }
    )
    return out
