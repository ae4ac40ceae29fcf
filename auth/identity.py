"""From a bearer token to a ``Principal``: who the caller is for the rest of the request."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from auth.principal import Principal
from auth.roles import CLINICIANS, Role
from config import Settings
from errors import Unauthenticated
from models.accounts import Account
from models.staff import AdminStaff, Doctor, Nurse
from services import grants

log = logging.getLogger(__name__)

STAFF_MODEL = {
    Role.DOCTOR: Doctor,
    Role.NURSE: Nurse,
    Role.ADMIN_STAFF: AdminStaff,
    Role.BILLING: AdminStaff,
}


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header (or of a WebSocket init payload)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use 'Authorization: Bearer <token>'", reason="malformed_header")
    return token.strip()


def _oid(value: Any) -> ObjectId | None:
    if value in (None, ""):
        return None
    try:
        return ObjectId(str(value))
    except (InvalidId, TypeError):
        raise Unauthenticated("Invalid token", reason="bad_claims") from None


def _roles(claims: Mapping[str, Any], settings: Settings) -> frozenset[Role]:
    raw = claims.get("roles", claims.get(settings.shms_oidc_role_claim, []))
    if isinstance(raw, str):
        raw = raw.split()
    known = {r.value for r in Role}
    return frozenset(Role(r) for r in raw if isinstance(r, str) and r in known)


async def _with_account(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """An external IdP knows its users, not our records: an ``Account`` whose ``idp_subject``
    is the token's ``sub`` supplies the roles and linked records (authoritative over claims)."""
    account = await Account.find_one({"idp_subject": str(claims["sub"])})
    if account is None or not account.active:
        return claims
    return {
        **claims,
        "roles": [r.value for r in account.roles],
        "pid": account.patient_id,
        "sid": account.staff_id,
        "did": account.department_id,
    }


async def principal_from_claims(claims: Mapping[str, Any], settings: Settings) -> Principal:
    """Build the caller from verified claims; linked records come from the token itself.

    The department of a staff member may be left out of a token (``shms token`` for instance);
    it is then read from their record. Clinicians' live break-the-glass grants are loaded by
    ``load_grants`` when the first access decision needs them.
    """
    if settings.shms_oidc_jwks_url:
        claims = await _with_account(claims)
    roles = _roles(claims, settings)
    if not roles:
        raise Unauthenticated("The token grants no SHMS role", reason="no_role")
    subject = str(claims["sub"])
    staff_id, department_id = _oid(claims.get("sid")), _oid(claims.get("did"))
    if staff_id is not None and department_id is None:
        for role in sorted(roles & STAFF_MODEL.keys()):
            record = await STAFF_MODEL[role].get(staff_id)
            if record is not None:
                department_id = record.department_id
                break
    client = claims.get("client_id")
    return Principal(
        subject=subject,
        roles=roles,
        patient_id=_oid(claims.get("pid")),
        staff_id=staff_id,
        department_id=department_id,
        client_id=str(client) if client else None,
        token_id=str(claims["jti"]) if claims.get("jti") else None,
        expires_at=int(claims["exp"]) if claims.get("exp") else None,
    )


async def load_grants(principal: Principal) -> None:
    """Fill in the clinician's live break-the-glass grants (read when access is first decided,
    so a request refused before that, say by the query limits, touches no database)."""
    live = await grants.live_grants(principal.subject) if principal.roles & CLINICIANS else {}
    principal.glass.clear()
    principal.glass.update(live)


async def authenticate(
    tokens: Any, settings: Settings, authorization: str | None
) -> tuple[Principal | None, Unauthenticated | None]:
    """The caller of a request, or why there is none (kept to answer every field with it)."""
    try:
        token = bearer(authorization)
        if token is None:
            return None, None
        claims = await tokens.verify(token)
        return await principal_from_claims(claims, settings), None
    except Unauthenticated as exc:
        return None, exc
