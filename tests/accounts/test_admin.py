"""Admin account mutations over real HTTP: success, refusals with codes and nothing changed,
one-time tokens (single use, expiry, newest only), client secret rotation, disabling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

import db
from auth.roles import Role
from models.accounts import Account, AccountTicket, RefreshToken, ServiceClient
from models.audit import AuditEvent
from models.base import utcnow
from services import accounts
from tests import factories
from tests.accounts.conftest import PASSWORD, code_of, gql, ok, sign_in, unique
from tests.conftest import token_for

CREATE = """mutation($input: CreateAccountInput!) {
  createAccount(input: $input) {
    account { id username roles staffId patientId departmentId active totpEnabled }
    passwordSet { token expiresAt }
  } }"""
LINK = """mutation($id: ID!, $staffId: ID, $patientId: ID) {
  linkAccount(id: $id, staffId: $staffId, patientId: $patientId) { id staffId patientId } }"""
ROLES = """mutation($id: ID!, $roles: [Role!]!) {
  setAccountRoles(id: $id, roles: $roles) { id roles } }"""
DISABLE = "mutation($id: ID!) { disableAccount(id: $id) { id active } }"
ENABLE = "mutation($id: ID!) { enableAccount(id: $id) { id active } }"
RESET = "mutation($id: ID!) { resetPassword(accountId: $id) { token expiresAt } }"
ROTATE = """mutation($clientId: String!) {
  rotateClientSecret(clientId: $clientId) { secret client { clientId active } } }"""
VIEWER = "{ viewer { subject roles } }"
NEW_PASSWORD = "a long and fresh passphrase"


def admin(app: Any) -> str:
    return token_for(app, roles=["admin"])


async def set_password(http: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    form = {"token": token, "new_password": password}
    return await http.post("/oauth/password-reset", data=form)


async def snapshot() -> list[dict[str, Any]]:
    rows = await db.collection(Account).find({}, {"updated_at": 0}).to_list(None)
    return sorted(rows, key=lambda r: str(r["_id"]))


# --- createAccount ---


async def test_an_admin_creates_an_account_whose_owner_sets_the_password_once(
    app: Any, http: httpx.AsyncClient
) -> None:
    doctor = await factories.doctor()
    username = unique("dr")
    created = (
        await ok(
            http,
            admin(app),
            CREATE,
            input={
                "username": username.upper(),
                "roles": ["DOCTOR"],
                "displayName": "Dr New",
                "staffId": str(doctor.id),
            },
        )
    )["createAccount"]
    account = created["account"]
    assert account["username"] == username  # folded
    assert account["staffId"] == str(doctor.id)
    assert account["departmentId"] == str(doctor.department_id)
    assert account["active"] is True and account["totpEnabled"] is False
    token = created["passwordSet"]["token"]
    stored = await AccountTicket.find_one({})
    assert stored is not None and token not in stored.token_hash  # only its hash is kept

    assert (await sign_in(http, username)).status_code == 400  # no password yet
    assert (await set_password(http, token, NEW_PASSWORD)).status_code == 200
    assert (await sign_in(http, username, NEW_PASSWORD)).status_code == 200
    again = await set_password(http, token, "another long passphrase")
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert (await sign_in(http, username, NEW_PASSWORD)).status_code == 200
    audit = await AuditEvent.find({"entity": "Account", "action": "create"}).to_list()
    assert [str(a.entity_id) for a in audit] == [account["id"]]


async def test_create_account_refusals_change_nothing(
    app: Any, http: httpx.AsyncClient, client_as: Any
) -> None:
    doctor, nurse = await factories.doctor(), await factories.nurse()
    patient = await factories.patient()
    taken = await accounts.create_account(unique("taken"), PASSWORD, [Role.ANALYST])
    before = await snapshot()
    base = {"username": unique("x"), "displayName": "X"}
    cases = [
        ({**base, "roles": ["DOCTOR"]}, "BAD_USER_INPUT"),  # no staff record
        ({**base, "roles": ["DOCTOR"], "staffId": str(nurse.id)}, "BAD_USER_INPUT"),
        ({**base, "roles": ["NURSE", "DOCTOR"], "staffId": str(doctor.id)}, "BAD_USER_INPUT"),
        ({**base, "roles": ["PATIENT"]}, "BAD_USER_INPUT"),
        ({**base, "roles": ["PATIENT", "ANALYST"], "patientId": str(patient.id)}, "BAD_USER_INPUT"),
        ({**base, "roles": ["ANALYST"], "patientId": str(patient.id)}, "BAD_USER_INPUT"),
        ({**base, "roles": ["PATIENT"], "patientId": str(doctor.id)}, "BAD_USER_INPUT"),
        ({**base, "roles": []}, "BAD_USER_INPUT"),
        ({**base, "username": taken.username.upper(), "roles": ["ANALYST"]}, "CONFLICT"),
    ]
    for given, code in cases:
        assert await code_of(http, admin(app), CREATE, input=given) == code, given
    for roles in (["doctor"], ["admin_staff"], ["compliance"], ["patient"]):
        token = token_for(app, roles=roles, sid=str(doctor.id))
        body = await gql(http, token, CREATE, input={**base, "roles": ["ANALYST"]})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", roles
    assert await snapshot() == before
    assert await AccountTicket.find({}).count() == 0


# --- linkAccount and setAccountRoles ---


async def test_link_and_roles_are_checked_against_each_other(
    app: Any, http: httpx.AsyncClient
) -> None:
    first, second = await factories.nurse(), await factories.nurse()
    doctor, patient = await factories.doctor(), await factories.patient()
    account = await accounts.create_account(unique("rn"), PASSWORD, [Role.NURSE], staff_id=first.id)
    aid = str(account.id)
    linked = (await ok(http, admin(app), LINK, id=aid, staffId=str(second.id)))["linkAccount"]
    assert linked["staffId"] == str(second.id)
    before = await snapshot()
    assert await code_of(http, admin(app), LINK, id=aid, staffId=str(doctor.id)) == (
        "BAD_USER_INPUT"
    )
    assert await code_of(http, admin(app), LINK, id=aid, patientId=str(patient.id)) == (
        "BAD_USER_INPUT"
    )
    assert await code_of(http, admin(app), LINK, id=aid) == "BAD_USER_INPUT"
    assert await code_of(http, admin(app), ROLES, id=aid, roles=["DOCTOR"]) == "BAD_USER_INPUT"
    assert await code_of(http, admin(app), ROLES, id=aid, roles=["PATIENT"]) == "BAD_USER_INPUT"
    missing = "0" * 24
    assert await code_of(http, admin(app), ROLES, id=missing, roles=["NURSE"]) == "NOT_FOUND"
    nurse_token = token_for(app, roles=["nurse"], sid=str(second.id))
    assert await code_of(http, nurse_token, ROLES, id=aid, roles=["ADMIN"]) == "FORBIDDEN"
    assert await snapshot() == before

    done = await ok(http, admin(app), ROLES, id=aid, roles=["NURSE", "ANALYST"])
    assert sorted(done["setAccountRoles"]["roles"]) == ["ANALYST", "NURSE"]


async def test_an_admin_cannot_lock_themselves_out(app: Any, http: httpx.AsyncClient) -> None:
    me = await accounts.create_account(unique("root"), PASSWORD, [Role.ADMIN])
    token = (await sign_in(http, me.username)).json()["access_token"]
    assert await code_of(http, token, DISABLE, id=str(me.id)) == "CONFLICT"
    assert await code_of(http, token, ROLES, id=str(me.id), roles=["ANALYST"]) == "CONFLICT"
    assert (await ok(http, token, VIEWER))["viewer"]["roles"] == ["ADMIN"]


# --- disableAccount / enableAccount ---


async def test_disabling_ends_access_at_the_next_request_and_enabling_restores_it(
    app: Any, http: httpx.AsyncClient
) -> None:
    user = await accounts.create_account(unique("an"), PASSWORD, [Role.ANALYST])
    signed_in = (await sign_in(http, user.username)).json()
    access = signed_in["access_token"]
    await ok(http, access, VIEWER)
    assert await code_of(http, access, DISABLE, id=str(user.id)) == "FORBIDDEN"

    done = await ok(http, admin(app), DISABLE, id=str(user.id))
    assert done["disableAccount"]["active"] is False
    body = await gql(http, access, VIEWER)
    assert body["errors"][0]["extensions"]["reason"] == "account_disabled"
    assert (await sign_in(http, user.username)).status_code == 400
    assert await RefreshToken.find({"account_id": user.id, "revoked": False}).count() == 0

    await ok(http, admin(app), ENABLE, id=str(user.id))
    await ok(http, access, VIEWER)
    refreshed = await http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": signed_in["refresh_token"]},
    )
    assert refreshed.status_code == 400  # revoked when disabled: stays revoked


# --- resetPassword ---


async def test_a_reset_token_works_once_and_only_the_newest_works(
    app: Any, http: httpx.AsyncClient
) -> None:
    user = await accounts.create_account(unique("u"), PASSWORD, [Role.ANALYST])
    old_session = (await sign_in(http, user.username)).json()
    first = (await ok(http, admin(app), RESET, id=str(user.id)))["resetPassword"]["token"]
    second = (await ok(http, admin(app), RESET, id=str(user.id)))["resetPassword"]["token"]
    assert (await sign_in(http, user.username)).status_code == 200  # old password until used
    assert (await set_password(http, first, NEW_PASSWORD)).status_code == 400  # superseded

    weak = await set_password(http, second, "short")
    assert weak.status_code == 400 and weak.json()["error"] == "invalid_request"
    assert "newPassword" in weak.json()["fields"]
    for bad in (user.username + "-and-more", "Password12345"):
        assert (await set_password(http, second, bad)).status_code == 400
    assert (await set_password(http, second, NEW_PASSWORD)).status_code == 200  # still usable

    assert (await sign_in(http, user.username)).status_code == 400
    assert (await sign_in(http, user.username, NEW_PASSWORD)).status_code == 200
    assert (await set_password(http, second, "yet another passphrase")).status_code == 400
    refreshed = await http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": old_session["refresh_token"]},
    )
    assert refreshed.status_code == 400  # the reset ended every session


async def test_an_expired_reset_token_is_refused(app: Any, http: httpx.AsyncClient) -> None:
    user = await accounts.create_account(unique("u"), PASSWORD, [Role.ANALYST])
    token = (await ok(http, admin(app), RESET, id=str(user.id)))["resetPassword"]["token"]
    await db.collection(AccountTicket).update_many(
        {}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}}
    )
    refused = await set_password(http, token, NEW_PASSWORD)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert (await sign_in(http, user.username)).status_code == 200  # unchanged


async def test_only_admins_issue_reset_tokens(app: Any, http: httpx.AsyncClient) -> None:
    user = await accounts.create_account(unique("u"), PASSWORD, [Role.ANALYST])
    own = (await sign_in(http, user.username)).json()["access_token"]
    assert await code_of(http, own, RESET, id=str(user.id)) == "FORBIDDEN"
    assert await AccountTicket.find({}).count() == 0


async def test_password_reset_is_throttled_like_sign_in(app: Any, client_from: Any) -> None:
    http = client_from()
    statuses = []
    for n in range(25):
        response = await set_password(http, f"guess-{n}", NEW_PASSWORD)
        statuses.append(response.status_code)
    assert statuses[:20] == [400] * 20
    assert statuses[-1] == 429


# --- rotateClientSecret ---


async def test_a_rotated_secret_replaces_the_old_one(app: Any, http: httpx.AsyncClient) -> None:
    client, secret = await accounts.create_service_client(unique("dash"), [Role.SERVICE], "Board")
    grant = {"grant_type": "client_credentials", "client_id": client.client_id}
    assert (await http.post("/oauth/token", data={**grant, "client_secret": secret})).is_success
    before = await ServiceClient.find_one({"client_id": client.client_id})

    worker = token_for(app, roles=["doctor", "service"])
    assert await code_of(http, worker, ROTATE, clientId=client.client_id) == "FORBIDDEN"
    assert await code_of(http, admin(app), ROTATE, clientId="no-such") == "NOT_FOUND"
    assert await ServiceClient.find_one({"client_id": client.client_id}) == before

    rotated = (await ok(http, admin(app), ROTATE, clientId=client.client_id))["rotateClientSecret"]
    assert rotated["client"] == {"clientId": client.client_id, "active": True}
    old = await http.post("/oauth/token", data={**grant, "client_secret": secret})
    assert old.status_code == 401
    new = await http.post("/oauth/token", data={**grant, "client_secret": rotated["secret"]})
    assert new.status_code == 200
    stored = await ServiceClient.find_one({"client_id": client.client_id})
    assert stored is not None and rotated["secret"] not in stored.secret_hash
