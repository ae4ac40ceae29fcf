"""``GET /patients/{id}/export``: everything SHMS holds about a patient (GDPR Art. 15).

Who: the patient themself (their own token), or an admin on their behalf, who must say why
(``?reason=``; recorded in the audit trail with the patient's identity struck out). It is a
download, not a view: the record is whole, whatever the caller's usual field policy, because
the law gives the person the whole of it.

``?format=json`` (the default) is ``services.subject_access``: every collection holding the
patient's data, their accounts, and the audit trail about them (who received their data).
``?format=fhir`` is the FHIR R4 Bundle of ``schema.fhir_export`` (the same mappers and
validation as ``/fhir/Patient/{id}/$everything``) read whole.

Every row exported is recorded as read in the audit trail before the answer leaves (no audit,
no answer); refusals are audited too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.access import AccessControl, patient_of
from auth.audit import AuditTrail
from auth.identity import authenticate
from auth.policy import REGISTRY, Kind
from config import Settings
from errors import BadUserInput, NotFound, ShmsError, Unauthenticated
from models.erasure import EXPORT
from models.patients import Patient
from schema import fhir_export
from schema.common import oid
from schema.context import Context
from services import fhir, subject_access
from services.erasure import identity_of, strike
from services.fhir import View

log = logging.getLogger("shms.export")

KIND = "PatientDataExport"
FORMATS = ("json", "fhir")
STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400}
MAX_REASON = 500


@dataclass
class WholeLens:
    """A ``schema.fhir_export`` lens that reads every row and field (the subject's own
    record), each recorded as read."""

    trail: AuditTrail
    types: frozenset[str]

    async def views(self, kind: Kind, rows: Sequence[Any]) -> list[View]:
        return [View(kind, row, None) for row in rows]

    def audit(self, view: View) -> None:
        self.trail.read(
            view.kind, view.row.id, patient_of(view.kind, view.row), sorted(view.used), []
        )


def _fields(kind: str) -> list[str]:
    declaration = REGISTRY.get(kind)
    if declaration is None:
        return []
    return sorted({name for group in declaration.groups for name in group.fields})


async def _authorise(access: AccessControl, request: Request) -> tuple[Any, str | None]:
    """The patient's id, and the reason an admin gave (None for the patient themself)."""
    patient_id = oid(request.path_params["id"], "id")
    await access.require(KIND, EXPORT, patient_id=patient_id)
    if access.principal.patient_id == patient_id:
        return patient_id, None
    reason = (request.query_params.get("reason") or "").strip()
    if not reason or len(reason) > MAX_REASON:
        problem = "is required on a patient's behalf" if not reason else "is too long"
        raise BadUserInput(f"reason: {problem}", {"reason": problem})
    return patient_id, reason


async def _export(context: Context, request: Request) -> tuple[dict[str, Any], str]:
    access = context.access
    form = request.query_params.get("format", "json")
    if form not in FORMATS:
        raise BadUserInput("format: use json or fhir", {"format": "must be json or fhir"})
    patient_id, reason = await _authorise(access, request)
    patient = await Patient.get(patient_id)
    if patient is None:
        raise NotFound("Patient", str(patient_id))
    on_behalf = f" on behalf: {strike(reason, identity_of(patient))}" if reason else ""
    context.audit.operation = f"patientDataExport:{form}{on_behalf}"[:500]
    if form == "fhir":
        lens = WholeLens(context.audit, frozenset(fhir.RESOURCE_TYPES))
        document = fhir.bundle(await fhir_export.collect(lens, patient))
        return document, "application/fhir+json"
    export = await subject_access.collect(patient_id)
    for kind, rows in export.rows.items():
        fields = _fields(kind)
        for row in rows:
            context.audit.read(kind, row.id, patient_id, fields)
    return export.document, "application/json"


def routes(settings: Settings) -> list[Route]:
    async def export(request: Request) -> Response:
        request_id = uuid.uuid4().hex
        principal, auth_error = await authenticate(
            request.app.state.tokens, settings, request.headers.get("authorization")
        )
        context = Context(
            settings=settings,
            request=request,
            principal=principal,
            auth_error=auth_error,
            request_id=request_id,
            client_address=request.client.host if request.client else None,
        )
        context.audit.operation = "patientDataExport"
        try:
            if principal is None:
                raise auth_error or Unauthenticated("Sign in first: send a bearer token")
            document, media_type = await _export(context, request)
            await context.audit.flush()  # no audit, no answer
        except ShmsError as exc:
            try:
                await context.audit.flush()
            except ShmsError:
                log.exception("could not audit a refused export (request %s)", request_id)
            status = 404 if isinstance(exc, NotFound) else STATUS.get(exc.code, 500)
            body = {"error": {"code": exc.code, "message": exc.message, **exc.extensions}}
            return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
        except Exception:
            log.exception("patient export failed (request %s)", request_id)
            body = {"error": {"code": "INTERNAL", "message": "Internal server error"}}
            return JSONResponse(body, status_code=500)
        suffix = "json" if media_type == "application/json" else "fhir.json"
        filename = f"patient-{request.path_params['id']}.{suffix}"
        return JSONResponse(
            document,
            media_type=media_type,
            headers={
                "Cache-Control": "no-store",
                "X-Request-Id": request_id,
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )

    return [Route("/patients/{id}/export", export, methods=["GET"], name="patient_export")]
