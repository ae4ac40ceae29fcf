"""From a bearer token to a ``Principal``: who the caller is for the rest of the request."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from auth import status
from auth.principal import Principal
from auth.roles import CLINICIANS
from auth.status import StatusCache, object_id, roles_of
from config import Settings
from errors import Unauthenticated
from services import grants

log = logging.getLogger(__name__)


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header (or of a WebSocket init payload)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use 'Authorization: Bearer <token>'", reason="malformed_header")
    return token.strip()


async def principal_from_claims(
    claims: Mapping[str, Any], settings: Settings, statuses: StatusCache | None = None
) -> Principal:
    """Build the caller from verified claims, as the records they name stand now.

    ``statuses`` (``auth.status``; the app's, else the installed one) refuses a token whose
    account, service client or staff record is inactive (``account_disabled``), drops roles
    the account lost, maps an external IdP's subject onto its account, and fills in a staff
    member's department when the token leaves it out. Clinicians' live break-the-glass grants
    are loaded by ``load_grants`` when the first access decision needs them.
    """
    claims = await (statuses or status.current()).vet(claims, settings)
    roles = roles_of(claims, settings)
    if not roles:
        raise Unauthenticated("The token grants no SHMS role", reason="no_role")
    client = claims.get("client_id")
    return Principal(
        subject=str(claims["sub"]),
        roles=roles,
        patient_id=object_id(claims.get("pid")),
        staff_id=object_id(claims.get("sid")),
        department_id=object_id(claims.get("did")),
        client_id=str(client) if client else None,
        token_id=str(claims["jti"]) if claims.get("jti") else None,
        expires_at=int(claims["exp"]) if claims.get("exp") else None,
    )


async def load_grants(principal: Principal) -> None:
    """Fill in the clinician's live break-the-glass grants (read when access is first decided,
    so a request refused before that, say by the query limits, touches no database).

    Each subscription event decides access afresh and so passes here too: a caller checked
    longer ago than ``auth.status.RECHECK_SECONDS`` is looked up again, so one disabled
    meanwhile gets ``account_disabled`` instead of the event.
    """
    await status.current().recheck(principal)
    live = await grants.live_grants(principal.subject) if principal.roles & CLINICIANS else {}
    principal.glass.clear()
    principal.glass.update(live)


async def authenticate(
    tokens: Any,
    settings: Settings,
    authorization: str | None,
    statuses: StatusCache | None = None,
) -> tuple[Principal | None, Unauthenticated | None]:
    """The caller of a request, or why there is none (kept to answer every field with it)."""
    try:
        token = bearer(authorization)
        if token is None:
            return None, None
        claims = await tokens.verify(token)
        return await principal_from_claims(claims, settings, statuses), None
    except Unauthenticated as exc:
        return None, exc
