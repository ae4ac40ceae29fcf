"""Each person's own password and TOTP second factor, over real HTTP: changing a password,
enrolment, the password grant with a code, replays, role requirements, throttled guesses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app import create_app
from auth.roles import Role
from config import Settings
from models.accounts import Account
from services import accounts
from tests import factories
from tests.accounts.conftest import PASSWORD, Clock, code_of, ok, sign_in, unique
from tests.conftest import token_for

CHANGE = """mutation($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) }"""
BEGIN = "mutation { beginTotpEnrolment { secret uri } }"
CONFIRM = "mutation($code: String!) { confirmTotpEnrolment(code: $code) }"
DISABLE_TOTP = "mutation($code: String!) { disableTotp(code: $code) }"
VIEWER = "{ viewer { subject } }"
NEW_PASSWORD = "a long and fresh passphrase"


async def signed_in(http: httpx.AsyncClient, username: str, **extra: str) -> dict[str, Any]:
    response = await sign_in(http, username, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def enrol(http: httpx.AsyncClient, token: str, clock: Clock) -> str:
    enrolment = (await ok(http, token, BEGIN))["beginTotpEnrolment"]
    assert enrolment["uri"].startswith("otpauth://totp/SHMS:")
    await ok(http, token, CONFIRM, code=clock.code(enrolment["secret"]))
    clock.step()
    secret: str = enrolment["secret"]
    return secret


# --- changePassword ---


async def test_a_user_changes_their_own_password_and_other_sessions_end(
    app: Any, http: httpx.AsyncClient
) -> None:
    user = await accounts.create_account(unique("u"), PASSWORD, [Role.ANALYST])
    other = await accounts.create_account(unique("o"), PASSWORD, [Role.ANALYST])
    session = await signed_in(http, user.username)
    token = session["access_token"]
    stored = await Account.get(user.id)

    refusals = [
        ("wrong current password", NEW_PASSWORD, "BAD_USER_INPUT"),
        (PASSWORD, "too short", "BAD_USER_INPUT"),
        (PASSWORD, f"my name is {user.username}", "BAD_USER_INPUT"),
        (PASSWORD, "Password12345", "BAD_USER_INPUT"),
        (PASSWORD, PASSWORD, "BAD_USER_INPUT"),
    ]
    for current, new, code in refusals:
        assert await code_of(http, token, CHANGE, current=current, new=new) == code, new
    assert await Account.get(user.id) == stored  # nothing changed

    assert (await ok(http, token, CHANGE, current=PASSWORD, new=NEW_PASSWORD))["changePassword"]
    assert (await sign_in(http, user.username)).status_code == 400
    await signed_in(http, user.username, password=NEW_PASSWORD)
    await signed_in(http, other.username)  # only their own
    refreshed = await http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
    )
    assert refreshed.status_code == 400


async def test_callers_without_an_account_have_no_password_to_change(
    app: Any, http: httpx.AsyncClient
) -> None:
    client = {"sub": "client:dash", "client_id": "dash", "roles": ["service"]}
    for claims in ({"roles": ["admin"]}, client):
        token = token_for(app, **claims)
        assert await code_of(http, token, CHANGE, current=PASSWORD, new=NEW_PASSWORD) == (
            "FORBIDDEN"
        )


async def test_guessing_the_current_password_is_throttled(app: Any, client_from: Any) -> None:
    http = client_from()
    user = await accounts.create_account(unique("u"), PASSWORD, [Role.ANALYST])
    token = (await signed_in(http, user.username))["access_token"]
    codes = [
        await code_of(http, token, CHANGE, current=f"guess {n}", new=NEW_PASSWORD) for n in range(6)
    ]
    assert codes[:5] == ["BAD_USER_INPUT"] * 5 and codes[5] == "RATE_LIMITED"


# --- TOTP over /oauth/token ---


async def test_totp_sign_in_wrong_and_replayed_codes(
    app: Any, http: httpx.AsyncClient, clock: Clock
) -> None:
    user = await accounts.create_account(unique("u"), PASSWORD, [Role.ANALYST])
    token = (await signed_in(http, user.username))["access_token"]
    secret = await enrol(http, token, clock)
    stored = await Account.get(user.id)
    assert stored is not None and stored.totp_secret == secret
    assert stored.totp_pending_secret is None

    missing = await sign_in(http, user.username)
    assert missing.status_code == 400 and missing.json()["error"] == "mfa_required"
    wrong = "000000" if clock.code(secret) != "000000" else "111111"
    refused = await sign_in(http, user.username, totp=wrong)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    bad_password = await sign_in(http, user.username, "not the password", totp=clock.code(secret))
    assert bad_password.status_code == 400 and bad_password.json()["error"] == "invalid_grant"

    code = clock.code(secret)
    good = await signed_in(http, user.username, totp=code)
    await ok(http, good["access_token"], VIEWER)
    replayed = await sign_in(http, user.username, totp=code)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    previous = clock.code(secret, steps=-1)  # older than the accepted step: also refused
    assert (await sign_in(http, user.username, totp=previous)).status_code == 400
    clock.step()
    await signed_in(http, user.username, totp=clock.code(secret))


async def test_enrolment_needs_a_correct_code_and_disabling_needs_one_too(
    app: Any, http: httpx.AsyncClient, clock: Clock
) -> None:
    user = await accounts.create_account(unique("u"), PASSWORD, [Role.ANALYST])
    token = (await signed_in(http, user.username))["access_token"]
    assert await code_of(http, token, CONFIRM, code="123456") == "CONFLICT"  # nothing begun
    enrolment = (await ok(http, token, BEGIN))["beginTotpEnrolment"]
    wrong = "000000" if clock.code(enrolment["secret"]) != "000000" else "111111"
    assert await code_of(http, token, CONFIRM, code=wrong) == "BAD_USER_INPUT"
    assert (await Account.get(user.id)).totp_secret is None  # type: ignore[union-attr]
    await signed_in(http, user.username)  # still one factor
    await ok(http, token, CONFIRM, code=clock.code(enrolment["secret"]))
    assert await code_of(http, token, BEGIN) == "CONFLICT"  # on already
    clock.step()

    assert await code_of(http, token, DISABLE_TOTP, code=wrong) == "BAD_USER_INPUT"
    assert await ok(http, token, DISABLE_TOTP, code=clock.code(enrolment["secret"]))
    await signed_in(http, user.username)  # one factor again


async def test_totp_guesses_are_throttled_like_passwords(
    app: Any, client_from: Any, clock: Clock
) -> None:
    http = client_from()
    user = await accounts.create_account(unique("u"), PASSWORD, [Role.ANALYST])
    token = (await signed_in(http, user.username))["access_token"]
    secret = await enrol(http, token, clock)
    right = clock.code(secret)
    wrong = [f"{n:06d}" for n in range(20) if f"{n:06d}" != right][:5]
    for code in wrong:
        assert (await sign_in(http, user.username, totp=code)).status_code == 400
    throttled = await sign_in(http, user.username, totp=right)
    assert throttled.status_code == 429  # even the right code waits
    assert (await Account.get(user.id)).totp_last_step != clock.now // 30  # type: ignore[union-attr]


# --- required by role ---


@pytest.fixture
async def strict(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose doctors and admins must sign in with TOTP."""
    required = settings.model_copy(update={"shms_totp_required_roles": "admin, doctor"})
    application = create_app(required)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            yield http


async def test_a_role_that_requires_totp_enrols_before_its_first_sign_in(
    strict: httpx.AsyncClient, clock: Clock
) -> None:
    http = strict
    doctor = await factories.doctor()
    user = await accounts.create_account(unique("dr"), PASSWORD, [Role.DOCTOR], staff_id=doctor.id)
    analyst = await accounts.create_account(unique("an"), PASSWORD, [Role.ANALYST])
    await signed_in(http, analyst.username)  # not required for everyone

    first = await sign_in(http, user.username)
    assert first.status_code == 400 and first.json()["error"] == "mfa_enrolment_required"
    ticket = first.json()["enrolment_token"]
    wrong_password = await sign_in(http, user.username, "not the password")
    assert "enrolment_token" not in wrong_password.json()

    # The enrolment token reaches nothing but enrolment.
    refused = await http.post(
        "/graphql", json={"query": VIEWER}, headers={"authorization": f"Bearer {ticket}"}
    )
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    begun = await http.post("/oauth/totp-enrolment", data={"enrolment_token": ticket})
    assert begun.status_code == 200, begun.text
    secret = begun.json()["secret"]
    assert begun.json()["otpauth_uri"].startswith("otpauth://totp/")
    wrong = "000000" if clock.code(secret) != "000000" else "111111"
    typo = await http.post("/oauth/totp-enrolment", data={"enrolment_token": ticket, "totp": wrong})
    assert typo.status_code == 400
    done = await http.post(
        "/oauth/totp-enrolment", data={"enrolment_token": ticket, "totp": clock.code(secret)}
    )
    assert done.status_code == 200, done.text
    assert {"access_token", "refresh_token"} <= set(done.json())
    reused = await http.post("/oauth/totp-enrolment", data={"enrolment_token": ticket})
    assert reused.status_code == 400

    clock.step()
    assert (await sign_in(http, user.username)).json()["error"] == "mfa_required"
    await signed_in(http, user.username, totp=clock.code(secret))
    token = done.json()["access_token"]
    clock.step()
    assert await code_of(http, token, DISABLE_TOTP, code=clock.code(secret)) == "CONFLICT"


async def test_sessions_from_before_the_requirement_end_at_refresh(
    settings: Settings, app: Any, http: httpx.AsyncClient
) -> None:
    doctor = await factories.doctor()
    user = await accounts.create_account(unique("dr"), PASSWORD, [Role.DOCTOR], staff_id=doctor.id)
    session = await signed_in(http, user.username)
    app.state.tokens.settings = settings.model_copy(update={"shms_totp_required_roles": "doctor"})
    refreshed = await http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


# --- resetTotp (an admin, for someone who lost their authenticator) ---

RESET_TOTP = """mutation($id: ID!, $reason: String!) {
  resetTotp(accountId: $id, reason: $reason) { id totpEnabled } }"""
AUDITED = """{ auditEvents(first: 100) {
  nodes { action outcome reason operation entityId entityIds } } }"""


async def test_an_admin_resets_a_lost_authenticator_and_the_old_sessions_end(
    app: Any, http: httpx.AsyncClient, clock: Clock
) -> None:
    user = await accounts.create_account(unique("u"), PASSWORD, [Role.ANALYST])
    session = await signed_in(http, user.username)
    secret = await enrol(http, session["access_token"], clock)
    admin = await accounts.create_account(unique("a"), PASSWORD, [Role.ADMIN])
    admin_token = (await signed_in(http, admin.username))["access_token"]
    other = token_for(app, roles=["admin_staff"])
    why = "Identity checked in person, badge 4471"

    assert await code_of(http, other, RESET_TOTP, id=str(user.id), reason=why) == "FORBIDDEN"
    assert await code_of(http, admin_token, RESET_TOTP, id=str(user.id), reason=" ") == (
        "BAD_USER_INPUT"
    )
    own = await code_of(http, admin_token, RESET_TOTP, id=str(admin.id), reason=why)
    assert own == "CONFLICT"  # an admin's own second factor needs their own code
    assert (await Account.get(user.id)).totp_secret == secret  # type: ignore[union-attr]

    done = await ok(http, admin_token, RESET_TOTP, id=str(user.id), reason=why)
    assert done["resetTotp"] == {"id": str(user.id), "totpEnabled": False}
    refreshed = await http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
    )
    assert refreshed.status_code == 400  # whoever has the device signs in again
    await signed_in(http, user.username)  # one factor: they enrol a new authenticator
    again = await code_of(http, admin_token, RESET_TOTP, id=str(user.id), reason=why)
    assert again == "CONFLICT"  # nothing left to reset

    compliance = token_for(app, roles=["compliance"])
    events = (await ok(http, compliance, AUDITED))["auditEvents"]["nodes"]
    resets = [(e["outcome"], e["entityId"]) for e in events if e["operation"] == "resetTotp"]
    assert resets.count(("ALLOWED", str(user.id))) == 1 and ("DENIED", None) in resets
    assert next(e["reason"] for e in events if e["outcome"] == "ALLOWED") == why
