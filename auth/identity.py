"""From a bearer token to a ``Principal``: who the caller is for the rest of the request.

Tokens SHMS signs itself carry ``roles`` and the record ids (``pid``, ``sid``, ``did``) of the
account that signed in. An external IdP's tokens are read differently (``external_claims``):
roles only from ``SHMS_OIDC_ROLE_CLAIM``, mapped by ``SHMS_OIDC_ROLE_MAP``; record ids never
from the token (the IdP knows nothing of SHMS records, and its users may edit claims such as
``preferred_username``), only from the SHMS account linked to the token's ``sub``
(``services.accounts.link_identity``), which ``auth.status`` looks up on every request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from auth import status
from auth.principal import Principal
from auth.roles import CLINICIANS, Role
from auth.status import StatusCache, object_id, roles_of
from config import Settings
from errors import Unauthenticated
from services import grants

log = logging.getLogger(__name__)

RECORD_CLAIMS = ("pid", "sid", "did")
"""Claims naming SHMS records: trusted only in tokens SHMS signed."""
_ABSENT = object()


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (``None`` if absent): a claim named exactly ``path`` first (IdPs
    namespace claims with URLs such as ``https://shms.example/roles``), else a dotted path into
    nested objects (``realm_access.roles``), each step preferring its longest dotted key."""

    def walk(node: Any, parts: list[str]) -> Any:
        if not isinstance(node, Mapping):
            return _ABSENT
        for cut in range(len(parts), 0, -1):
            key = ".".join(parts[:cut])
            if key in node:
                found = node[key] if cut == len(parts) else walk(node[key], parts[cut:])
                if found is not _ABSENT:
                    return found
        return _ABSENT

    found = walk(claims, path.split("."))
    return None if found is _ABSENT else found


def provider_roles(claims: Mapping[str, Any], settings: Settings) -> frozenset[Role]:
    """The SHMS roles an external token grants: the names at ``SHMS_OIDC_ROLE_CLAIM`` (a list,
    or one space-separated string) through ``SHMS_OIDC_ROLE_MAP``; names it does not map (with
    no map: names that are not SHMS roles) grant nothing."""
    raw = claim_at(claims, settings.shms_oidc_role_claim)
    names = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
    held = {name for name in names if isinstance(name, str)}
    table = settings.oidc_role_map
    if table is None:
        known = {r.value for r in Role}
        return frozenset(Role(name) for name in held if name in known)
    return frozenset(role for name in held for role in table.get(name, ()))


def external_claims(claims: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """An external IdP's claims as SHMS reads them: ``roles`` replaced by the mapped provider
    roles (a ``roles`` claim elsewhere in the token counts for nothing), record claims dropped."""
    out = {k: v for k, v in claims.items() if k not in RECORD_CLAIMS}
    out["roles"] = sorted(r.value for r in provider_roles(claims, settings))
    return out


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

    With an external IdP the claims are first read by ``external_claims``. ``statuses``
    (``auth.status``; the app's, else the installed one) then refuses a token whose account,
    service client or staff record is inactive (``account_disabled``), drops roles the account
    lost, maps an external IdP's subject onto its linked account (whose roles and records then
    decide), and fills in a staff member's department when the token leaves it out. An
    unlinked external subject keeps its provider roles and acts as no record: a ``patient``
    sees no patient's data, a clinician treats nobody. Clinicians' live break-the-glass grants
    are loaded by ``load_grants`` when the first access decision needs them.
    """
    if settings.shms_oidc_jwks_url:
        claims = external_claims(claims, settings)
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
        ward_id=object_id(claims.get("wid")),
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
