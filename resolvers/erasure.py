"""Erasure over GraphQL: ``erasePatient`` (admins) and the request it leaves behind.

The download of everything held about a patient (GDPR Art. 15) is HTTP, not GraphQL:
``GET /patients/{id}/export`` (``routes.patient_export``).
"""

from __future__ import annotations

import strawberry

from errors import Conflict
from models.audit import AuditAction
from models.erasure import ERASE
from schema.common import oid, view
from schema.context import Info
from schema.enforce import acts
from schema.erasure import ErasureRequest
from services import erasure

KIND = "ErasureRequest"
WRITTEN = ("patientId", "pseudonym", "status", "reason", "records")


@strawberry.type
class ErasureQuery:
    @strawberry.field(description="The erasure of a patient, if one was ever asked for.")
    async def erasure_request(self, info: Info, patient_id: strawberry.ID) -> ErasureRequest | None:
        info.context.access.require_kind(KIND)
        found = await erasure.request_of(oid(patient_id, "patientId"))
        return view(ErasureRequest, found) if found is not None else None


@strawberry.type
class ErasureMutation:
    @strawberry.mutation(
        description="Erase a patient (GDPR Art. 17): identity removed from every collection, "
        "cache and live view; billing records and the audit trail kept under a pseudonym; "
        "linked accounts disabled. CONFLICT (reason LEGAL_HOLD, holds listed) while a hold of "
        "SHMS_ERASURE_HOLDS applies. Calling it again completes an interrupted erasure, or "
        "answers with the finished one.",
        metadata=acts(KIND, ERASE),
    )
    async def erase_patient(
        self, info: Info, patient_id: strawberry.ID, reason: str
    ) -> ErasureRequest:
        access = info.context.access
        target = oid(patient_id, "patientId")
        await access.require(KIND, ERASE, patient_id=target)
        try:
            request, fresh = await erasure.erase(
                target,
                reason,
                requested_by=access.principal.subject,
                holds=info.context.settings.erasure_holds,
            )
        except Conflict as exc:
            holds = exc.extensions.get("holds") or []
            if holds:
                names = ", ".join(h["hold"] for h in holds)
                access.audit.denied(KIND, None, target, AuditAction.DELETE, f"legal hold: {names}")
            raise
        if fresh:  # the reason is stored with the patient's identity struck out
            access.audit.write(
                KIND, request.id, target, AuditAction.DELETE, WRITTEN, note=request.reason
            )
        return view(ErasureRequest, request)
