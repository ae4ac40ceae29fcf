"""From verified claims to the caller: roles, linked records, department, live grants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId

from auth.identity import authenticate, bearer, load_grants, principal_from_claims
from auth.roles import Role
from config import Settings
from errors import Unauthenticated
from models.accounts import Account
from models.base import utcnow
from models.grants import AccessGrant
from tests import factories

LOCAL = Settings(shms_seed_demo=False)
EXTERNAL = Settings(shms_seed_demo=False, shms_oidc_jwks_url="https://idp.example/jwks")


async def test_links_come_from_the_token_and_the_department_from_the_record(
    database: Any,
) -> None:
    dept = await factories.department()
    doctor = await factories.doctor(dept)
    claims = {"sub": "u1", "roles": ["doctor", "not-a-role"], "sid": str(doctor.id)}
    principal = await principal_from_claims(claims, LOCAL)
    assert principal.roles == {Role.DOCTOR}
    assert principal.staff_id == doctor.id and principal.department_id == dept.id


async def test_live_grants_are_loaded_for_clinicians_only(database: Any) -> None:
    patient = await factories.patient()
    now = utcnow()
    for subject, minutes in (("nurse-1", 30), ("nurse-1", -1)):
        await AccessGrant(
            subject=subject,
            patient_id=patient.id,
            reason=f"reason {minutes}",
            expires_at=now + timedelta(minutes=minutes),
        ).insert()
    nurse = await principal_from_claims({"sub": "nurse-1", "roles": ["nurse"]}, LOCAL)
    assert nurse.glass == {}  # not read until an access decision needs them
    await load_grants(nurse)
    assert nurse.glass == {patient.id: "reason 30"}  # the expired grant is gone
    clerk = await principal_from_claims({"sub": "nurse-1", "roles": ["billing"]}, LOCAL)
    await load_grants(clerk)
    assert clerk.glass == {}


async def test_an_external_users_account_decides_roles_and_links(database: Any) -> None:
    patient_id = ObjectId()
    await Account(
        username="ext", password_hash="x", roles=[Role.PATIENT], patient_id=patient_id,
        idp_subject="idp|42",
    ).insert()  # fmt: skip
    mapped = await principal_from_claims({"sub": "idp|42", "roles": ["admin"]}, EXTERNAL)
    assert mapped.roles == {Role.PATIENT} and mapped.patient_id == patient_id
    unmapped = await principal_from_claims({"sub": "idp|7", "roles": "nurse doctor"}, EXTERNAL)
    assert unmapped.roles == {Role.NURSE, Role.DOCTOR} and unmapped.patient_id is None


async def test_records_that_are_not_active_refuse_the_token(database: Any) -> None:
    """Without an app (no Redis), the standing is read from MongoDB: never assumed active."""
    doctor = await factories.doctor(active=False)
    claims = {"sub": "cli:doctor:x", "roles": ["doctor"], "sid": str(doctor.id)}
    with pytest.raises(Unauthenticated) as refused:
        await principal_from_claims(claims, LOCAL)
    assert refused.value.extensions["reason"] == "account_disabled"
    await Account(
        username="gone", password_hash="x", roles=[Role.NURSE], idp_subject="idp|9", active=False
    ).insert()  # an external user whose account is disabled gets nothing from IdP roles
    with pytest.raises(Unauthenticated) as refused:
        await principal_from_claims({"sub": "idp|9", "roles": ["admin"]}, EXTERNAL)
    assert refused.value.extensions["reason"] == "account_disabled"


async def test_tokens_without_a_role_or_with_bad_links_are_refused(database: Any) -> None:
    with pytest.raises(Unauthenticated):
        await principal_from_claims({"sub": "u", "roles": []}, LOCAL)
    with pytest.raises(Unauthenticated):
        await principal_from_claims({"sub": "u", "roles": ["patient"], "pid": "nope"}, LOCAL)


async def test_authorization_header_forms() -> None:
    assert bearer(None) is None
    assert bearer("Bearer abc") == "abc"
    with pytest.raises(Unauthenticated):
        bearer("Basic abc")

    class Refuse:
        async def verify(self, token: str) -> dict[str, Any]:
            raise Unauthenticated("Invalid or expired token", reason="expired")

    principal, error = await authenticate(Refuse(), LOCAL, "Bearer t")
    assert principal is None and error is not None and error.extensions["reason"] == "expired"
    assert await authenticate(Refuse(), LOCAL, None) == (None, None)
