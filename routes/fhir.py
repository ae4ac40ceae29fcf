"""``GET /fhir/Patient/{id}/$everything``: a patient's record as a FHIR R4 Bundle.

The caller is the bearer token's, as on ``/graphql``; what the bundle holds is decided by the
same policy (``schema.fhir_export``), or by a share when the caller is the service client the
record was shared with. ``?deidentify=safe-harbor`` de-identifies it (HIPAA Safe Harbor);
``?_type=Observation,Condition`` narrows it. The request's audit trail is written before the
answer leaves (no audit, no answer), refusals included.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.identity import authenticate
from config import Settings
from errors import BadUserInput, NotFound, ShmsError, Unauthenticated
from schema import fhir_export
from schema.common import oid
from schema.context import Context
from schema.ratelimit import charge, failed_open, redis_of

log = logging.getLogger("shms.fhir")

MEDIA_TYPE = "application/fhir+json"
STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400}
DEIDENTIFICATIONS = frozenset({"safe-harbor"})


def _outcome(status: int, code: str, message: str) -> JSONResponse:
    """A FHIR OperationOutcome, with SHMS's error code as the issue's detail code."""
    issue = {
        "severity": "error",
        "code": {
            401: "login",
            403: "forbidden",
            404: "not-found",
            400: "invalid",
            429: "throttled",
        }.get(status, "exception"),
        "details": {"coding": [{"system": "urn:shms:error-code", "code": code}], "text": message},
    }
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": [issue]},
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _arguments(request: Request) -> tuple[Any, bool, list[str] | None]:
    patient_id = oid(request.path_params["id"], "id")
    deidentify = request.query_params.get("deidentify")
    if deidentify is not None and deidentify not in DEIDENTIFICATIONS:
        raise BadUserInput("deidentify: use safe-harbor", {"deidentify": "must be safe-harbor"})
    raw = request.query_params.get("_type")
    types = [t.strip() for t in raw.split(",") if t.strip()] if raw else None
    return patient_id, deidentify is not None, types


async def _charge(settings: Settings, context: Context) -> Response | None:
    """The export's cost, charged to the caller's rate-limit counters as a GraphQL operation
    of that cost would be (the route is no way around the limiter); 429 when over."""
    redis = redis_of(context)
    if not settings.shms_rate_limit_enabled or redis is None:
        return None
    try:
        headers, refused = await charge(settings, redis, context, fhir_export.EXPORT_COST)
    except (RedisError, OSError, TimeoutError):
        failed_open()
        return None
    if refused is None:
        return None
    response = _outcome(429, "RATE_LIMITED", refused)
    response.headers.update(headers)
    return response


def routes(settings: Settings) -> list[Route]:
    async def everything(request: Request) -> Response:
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
        context.audit.operation = "fhir:Patient/$everything"
        try:
            if principal is None:
                raise auth_error or Unauthenticated("Sign in first: send a bearer token")
            limited = await _charge(settings, context)
            if limited is not None:
                return limited
            patient_id, deidentify, types = _arguments(request)
            bundle = await fhir_export.everything(
                context.access, settings, patient_id, deidentify, types
            )
            await context.audit.flush()  # no audit, no answer
        except ShmsError as exc:
            try:
                await context.audit.flush()  # refusals are audited too
            except ShmsError:
                log.exception("could not audit a refused FHIR export (request %s)", request_id)
            status = STATUS.get(exc.code, 500)
            if isinstance(exc, NotFound):
                status = 404
            return _outcome(status, exc.code, exc.message)
        except Exception:
            log.exception("FHIR export failed (request %s)", request_id)
            return _outcome(500, "INTERNAL", "Internal server error")
        return JSONResponse(
            bundle,
            media_type=MEDIA_TYPE,
            headers={"Cache-Control": "no-store", "X-Request-Id": request_id},
        )

    return [Route("/fhir/Patient/{id}/$everything", everything, methods=["GET"], name="fhir")]
