"""Account rules: unique case-insensitive usernames, links that must exist, hashed secrets."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from bson import ObjectId

from auth import passwords
from auth.roles import Role
from errors import BadUserInput, Conflict, Unauthenticated
from models.accounts import Account
from services import accounts
from tests.services import factories

pytestmark = pytest.mark.usefixtures("database")


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "DEFAULT_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


async def test_usernames_are_unique_whatever_their_case() -> None:
    account = await accounts.create_account(" Grace.Hopper ", "long enough", [Role.ANALYST])
    assert account.username == "grace.hopper"
    with pytest.raises(Conflict):
        await accounts.create_account("GRACE.HOPPER", "long enough", [Role.ANALYST])


async def test_the_password_is_stored_hashed_only() -> None:
    account = await accounts.create_account("ada", "long enough", [Role.ADMIN])
    raw = await Account.get_motor_collection().find_one({"_id": account.id})
    assert raw is not None
    assert raw["password_hash"].startswith("$argon2id$") and "long enough" not in str(raw)
    assert "idp_subject" not in raw  # absent, not null: the sparse unique index skips it


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"password": "short"}, "password"),
        ({"username": "no spaces allowed"}, "username"),
        ({"roles": [Role.PATIENT]}, "patientId"),
        ({"roles": [Role.DOCTOR]}, "staffId"),
        ({"roles": [Role.PATIENT], "patient_id": ObjectId()}, "patientId"),
        ({"roles": [Role.NURSE], "staff_id": ObjectId()}, "staffId"),
        ({"roles": []}, "roles"),
    ],
)
async def test_invalid_accounts_are_bad_input(kwargs: dict[str, Any], field: str) -> None:
    data: dict[str, Any] = {"username": "someone", "password": "long enough", "roles": [Role.ADMIN]}
    data.update(kwargs)
    with pytest.raises(BadUserInput) as caught:
        await accounts.create_account(data.pop("username"), data.pop("password"), **data)
    assert field in caught.value.fields
    assert await Account.find_all().count() == 0


async def test_a_staff_account_takes_its_records_department() -> None:
    department = await factories.department()
    assert department.id is not None
    nurse = await factories.nurse(department.id)
    account = await accounts.create_account(
        "nurse.joy", "long enough", [Role.NURSE], staff_id=nurse.id
    )
    assert account.department_id == department.id
    assert accounts.account_claims(account) == {
        "sub": str(account.id),
        "roles": ["nurse"],
        "sid": str(nurse.id),
        "did": str(department.id),
    }


async def test_idp_accounts_need_no_password_but_a_unique_subject() -> None:
    await accounts.create_account("ext.one", None, [Role.ANALYST], idp_subject="idp|1")
    await accounts.create_account("ext.two", None, [Role.ANALYST], idp_subject="idp|2")
    with pytest.raises(Conflict):
        await accounts.create_account("ext.three", None, [Role.ANALYST], idp_subject="idp|1")
    with pytest.raises(BadUserInput):
        await accounts.create_account("no.password", None, [Role.ANALYST])
    with pytest.raises(Unauthenticated):  # and they cannot sign in with a password
        await accounts.sign_in_with_password("ext.one", "", refresh_ttl=300)


async def test_a_sign_in_upgrades_a_weak_hash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    account = await accounts.create_account("legacy", "long enough", [Role.ADMIN], hasher=weak)
    grant = await accounts.sign_in_with_password("LEGACY", "long enough", refresh_ttl=300)
    assert grant.claims["sub"] == str(account.id) and grant.refresh_token
    upgraded = await Account.get(account.id)
    assert upgraded is not None and upgraded.password_hash != account.password_hash
    assert not passwords.needs_rehash(upgraded.password_hash or "")


async def test_service_client_secrets_are_generated_and_shown_once() -> None:
    client, secret = await accounts.create_service_client("dash", [Role.SERVICE], "Dashboard")
    assert len(secret) >= 40 and secret not in client.secret_hash
    grant = await accounts.sign_in_with_client_credentials("dash", secret)
    assert grant.claims == {"sub": "client:dash", "client_id": "dash", "roles": ["service"]}
    assert grant.refresh_token is None
    with pytest.raises(Unauthenticated):
        await accounts.sign_in_with_client_credentials("dash", secret + "x")
