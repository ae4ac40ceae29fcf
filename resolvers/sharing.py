"""Record shares and the FHIR export over GraphQL."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from auth.roles import Role
from errors import BadUserInput, Forbidden, NotFound
from models.audit import AuditAction
from schema import fhir_export
from schema.common import create_data, oid, view
from schema.context import Info
from schema.enforce import acts, reads
from schema.limits import weighs
from schema.sharing import RecordShare, ShareRecordInput
from services import sharing
from services.fhir import RESOURCE_TYPES

KIND = "RecordShare"


@strawberry.type
class SharingQuery:
    @strawberry.field(description="Every share of a patient's record, oldest first.")
    async def record_shares(self, info: Info, patient_id: strawberry.ID) -> list[RecordShare]:
        info.context.access.require_kind(KIND)
        found = await sharing.of_patient(oid(patient_id, "patientId"))
        return [view(RecordShare, s) for s in found]

    @strawberry.field(
        description="The patient's record as a FHIR R4 Bundle (validated), holding only what "
        "the caller may read; `deidentify`: HIPAA Safe Harbor. Also served as "
        "`GET /fhir/Patient/{id}/$everything`.",
        metadata={**reads("Patient"), **weighs(fhir_export.EXPORT_COST)},
    )
    async def patient_fhir_bundle(
        self,
        info: Info,
        patient_id: strawberry.ID,
        deidentify: bool = False,
        types: list[str] | None = None,
    ) -> JSON:
        context = info.context
        return JSON(
            await fhir_export.everything(
                context.access, context.settings, oid(patient_id, "patientId"), deidentify, types
            )
        )


@strawberry.type
class SharingMutation:
    @strawberry.mutation(
        description="Share a patient's record (or some resource types) with another provider's "
        "service client, for a purpose and a period: with the patient's consent, or on an "
        "emergency basis with a reason (audited like break-the-glass).",
        metadata=acts(KIND, "shareRecord"),
    )
    async def share_record(self, info: Info, input: ShareRecordInput) -> RecordShare:
        access = info.context.access
        data = create_data(input)
        patient = await info.context.loaders.patient_by_id.load(data["patient_id"])
        if patient is None:
            raise BadUserInput("patientId: no such patient", {"patientId": "no such patient"})
        await access.require(KIND, "shareRecord", patient=patient)
        principal = access.principal
        if principal.staff_id is None or not principal.has(Role.DOCTOR, Role.NURSE):
            raise Forbidden("Only a clinician with a staff record shares records")
        reason = data.get("emergency_reason")
        if reason is not None and not reason.strip():
            raise BadUserInput("emergencyReason: give the reason", {"emergencyReason": "empty"})
        share = await sharing.create(
            patient.id,
            principal.staff_id,
            principal.subject,
            data["recipient_client_id"],
            data["purpose"],
            data.get("resource_types") or RESOURCE_TYPES,
            data["expires_at"],
            deidentified=bool(data.get("deidentified")),
            emergency_reason=reason,
        )
        fields = sorted(data)
        if share.emergency_reason:
            access.audit.write(
                KIND,
                share.id,
                patient.id,
                AuditAction.BREAK_GLASS,
                fields,
                break_glass_reason=f"emergency share: {share.emergency_reason}",
            )
        else:
            access.wrote(KIND, share, "shareRecord", fields)
        return view(RecordShare, share)

    @strawberry.mutation(
        description="End a share at once: the receiver reads nothing more.",
        metadata=acts(KIND, "revokeRecordShare"),
    )
    async def revoke_record_share(
        self, info: Info, id: strawberry.ID, reason: str | None = None
    ) -> RecordShare:
        access = info.context.access
        share = await info.context.loaders.record_share_by_id.load(oid(id))
        if share is None:
            raise NotFound(KIND, str(id))
        await access.require(KIND, "revokeRecordShare", row=share)
        done = await sharing.revoke(share, access.principal.subject, reason)
        access.wrote(KIND, done, "revokeRecordShare", ("status", "revoke_reason"))
        return view(RecordShare, done)
