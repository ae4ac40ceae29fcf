"""Accounts and service clients, the three ways to sign in (password, client, refresh), and
the links from an external IdP's subjects to accounts.

Each sign-in returns a ``Grant``: the claims an access token should carry about its subject
(``sub``, ``roles`` and the linked record ids) plus, for people, a new refresh token. The token
service adds the registered claims (iss, aud, exp, ...) when it signs. Failures raise
``UNAUTHENTICATED`` with a ``reason`` the OAuth endpoint maps onto RFC 6749 error codes.

With an external IdP, SHMS signs nothing: an admin links the IdP's ``sub`` to an account
(``link_identity``), whose roles, patient and staff record then decide what that person is.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from bson import ObjectId

import db
from auth import passwords, status
from auth.roles import CLINICIANS, Role
from errors import BadUserInput, Conflict, NotFound, Unauthenticated
from models.accounts import Account, AccountTicket, RefreshToken, ServiceClient, TicketPurpose
from models.base import Entity, utcnow
from models.departments import Department
from models.patients import Patient
from services import totp
from services.common import ensure_exists, get_or_404, insert, update
from services.validation import build, require

MIN_PASSWORD_LENGTH = 8
"""For passwords an admin or the seed sets directly, and client secrets."""
MIN_USER_PASSWORD_LENGTH = 12
"""For passwords people choose (change, reset): see ``check_new_password``."""
COMMON_PASSWORDS = frozenset(
    {
        "123456789012", "1234567890123", "password1234", "password12345", "passwordpassword",
        "qwertyuiopasdf", "qwertyuiop123", "iloveyou1234", "letmein12345", "welcome12345",
        "administrator", "administrator1", "changeme1234", "hospital1234", "hospital2024",
        "hospital2025", "healthcare123", "doctor123456", "nurse1234567", "summer2024!!",
        "winter2024!!", "abcdefghijkl", "aaaaaaaaaaaa", "111111111111", "000000000000",
        "trustno1trustno1", "football1234", "baseball1234", "monkey123456",
        "correcthorsebatterystaple",
    }
)  # fmt: skip
"""Refused whatever their length: the first guesses of any attacker (compared lower-cased)."""
MAX_SUBJECT_LENGTH = 255
_STAFF_RECORDS = status.STAFF_MODELS
"""Which collection a staff role's ``staff_id`` points into: the one map sign-in, account
creation and the per-request standing check share."""
_NEEDS_STAFF_RECORD = CLINICIANS | {Role.RADIOLOGIST}
"""Roles that act as a clinician's staff record (their relations and department come from it)."""


TOTP_ENROLMENT_SECONDS = 600
"""How long the enrolment token of an account that must enrol a second factor lasts."""

RolesCheck = Callable[[Iterable[Role]], bool]


def _never(roles: Iterable[Role]) -> bool:
    return False


class EnrolmentRequired(Unauthenticated):
    """The password was right, but the account's roles require TOTP and it has none yet:
    ``token`` (one use, ``TOTP_ENROLMENT_SECONDS``) lets it enrol at ``/oauth/totp-enrolment``."""

    def __init__(self, token: str) -> None:
        super().__init__(
            "Your role requires two-factor sign-in: enrol an authenticator first",
            reason="mfa_enrolment_required",
        )
        self.token = token


@dataclass(frozen=True)
class Grant:
    """A successful sign-in: the subject's claims and, for accounts, the next refresh token."""

    claims: dict[str, Any]
    refresh_token: str | None = None


def account_claims(account: Account) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": str(account.id), "roles": [r.value for r in account.roles]}
    for claim, value in (
        ("pid", account.patient_id),
        ("sid", account.staff_id),
        ("did", account.department_id),
    ):
        if value is not None:
            claims[claim] = str(value)
    return claims


def client_claims(client: ServiceClient) -> dict[str, Any]:
    return {
        "sub": f"client:{client.client_id}",
        "client_id": client.client_id,
        "roles": [r.value for r in client.roles],
    }


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_password(password: str) -> None:
    require(
        len(password) >= MIN_PASSWORD_LENGTH, "password", f"is shorter than {MIN_PASSWORD_LENGTH}"
    )
    require(len(password) <= passwords.MAX_PASSWORD_LENGTH, "password", "is too long")


async def _staff_record(roles: Iterable[Role], staff_id: ObjectId) -> Entity:
    """The staff record ``staff_id`` names, looked up where the account's roles say it is."""
    wanted = {_STAFF_RECORDS[r] for r in roles if r in _STAFF_RECORDS}
    for model in wanted or set(_STAFF_RECORDS.values()):
        found = await model.get(staff_id)
        if found is not None:
            return found
    raise BadUserInput(f"staffId: no staff record {staff_id}", {"staffId": "no such staff record"})


async def _staff_active(account: Account) -> bool:
    """Whether the staff record an account acts as is active (read from MongoDB: sign-in is
    rare and must not trust a cache). An account linked to no record has nothing to check."""
    if account.staff_id is None:
        return True
    wanted = {_STAFF_RECORDS[r] for r in account.roles if r in _STAFF_RECORDS}
    for model in wanted or set(_STAFF_RECORDS.values()):
        raw = await db.collection(model).find_one({"_id": account.staff_id}, {"active": 1})
        if raw is not None:
            return bool(raw.get("active", True))
    return True


async def create_account(
    username: str,
    password: str | None,
    roles: Iterable[Role],
    *,
    patient_id: ObjectId | None = None,
    staff_id: ObjectId | None = None,
    department_id: ObjectId | None = None,
    display_name: str | None = None,
    idp_subject: str | None = None,
    hasher: PasswordHasher | None = None,
) -> Account:
    """Create an account; a staff account without a department takes its staff record's.

    ``password`` may be ``None`` only for accounts that sign in through the external IdP.
    Raises ``BAD_USER_INPUT`` for invalid input, ``CONFLICT`` for a taken username.
    """
    role_list = list(dict.fromkeys(Role(r) for r in roles))
    if password is None:
        require(idp_subject is not None, "password", "is required")
    else:
        _check_password(password)
    if Role.PATIENT in role_list:
        require(patient_id is not None, "patientId", "is required for a patient account")
    if staff_id is not None:
        record = await _staff_record(role_list, staff_id)
        department_id = department_id or getattr(record, "department_id", None)
    else:
        clinician = bool(set(role_list) & _NEEDS_STAFF_RECORD)
        require(not clinician, "staffId", "is required for a clinician account")
    await ensure_exists(Patient, patient_id, "patientId", "patient")
    await ensure_exists(Department, department_id, "departmentId", "department")
    password_hash = (
        None
        if password is None
        else await asyncio.to_thread(passwords.hash_password, password, hasher)
    )
    account = build(
        Account,
        {
            "username": username,
            "password_hash": password_hash,
            "roles": role_list,
            "display_name": display_name,
            "patient_id": patient_id,
            "staff_id": staff_id,
            "department_id": department_id,
            "idp_subject": idp_subject,
        },
    )
    return await insert(account, "account")


async def create_service_client(
    client_id: str,
    roles: Iterable[Role],
    name: str,
    secret: str | None = None,
    *,
    hasher: PasswordHasher | None = None,
) -> tuple[ServiceClient, str]:
    """Register a machine client; returns it with its secret, which is shown only this once."""
    secret = secret or secrets.token_urlsafe(32)
    _check_password(secret)
    client = build(
        ServiceClient,
        {
            "client_id": client_id,
            "secret_hash": await asyncio.to_thread(passwords.hash_password, secret, hasher),
            "roles": list(dict.fromkeys(Role(r) for r in roles)),
            "name": name,
        },
    )
    return await insert(client, "service client"), secret


async def _new_refresh_token(account_id: ObjectId, family_id: str, ttl: int) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await RefreshToken(
        token_hash=_token_hash(token),
        account_id=account_id,
        family_id=family_id,
        expires_at=now + timedelta(seconds=ttl),
        created_at=now,
        updated_at=now,
    ).insert()
    return token


async def _upgrade_hash(account: Account, password: str) -> None:
    """Re-hash with today's parameters; compare-and-set so a concurrent change wins."""
    new_hash = await asyncio.to_thread(passwords.hash_password, password)
    await db.collection(Account).update_one(
        {"_id": account.id, "password_hash": account.password_hash},
        {"$set": {"password_hash": new_hash, "updated_at": utcnow()}},
    )


async def sign_in_with_password(
    username: str,
    password: str,
    *,
    refresh_ttl: int,
    code: str | None = None,
    totp_required: RolesCheck = _never,
) -> Grant:
    """Check a username and password, then the TOTP ``code`` when the account has a second
    factor; wrong, unknown and inactive all look the same. An account whose roles require TOTP
    (``totp_required``) without one enrolled gets ``EnrolmentRequired`` instead of a grant."""
    account = await Account.find_one({"username": username.strip().lower()})
    stored = account.password_hash if account is not None else None
    if stored is None:
        await asyncio.to_thread(passwords.burn_time, password)
        ok = False
    else:
        ok = await asyncio.to_thread(passwords.verify, stored, password)
    if not ok or account is None or not account.active:
        raise Unauthenticated("Invalid username or password", reason="invalid_credentials")
    if not await _staff_active(account):
        raise Unauthenticated("Invalid username or password", reason="inactive_staff")
    assert account.id is not None and stored is not None
    if account.totp_secret is None and totp_required(account.roles):
        ticket, _ = await issue_ticket(
            account.id, TicketPurpose.TOTP_ENROLMENT, TOTP_ENROLMENT_SECONDS
        )
        raise EnrolmentRequired(ticket)
    if account.totp_secret is not None:
        if not code:
            raise Unauthenticated("A one-time code (totp) is required", reason="mfa_required")
        if not await totp.check(account, code):
            raise Unauthenticated("Invalid one-time code", reason="invalid_totp")
    if passwords.needs_rehash(stored):
        await _upgrade_hash(account, password)
    token = await _new_refresh_token(account.id, secrets.token_urlsafe(16), refresh_ttl)
    return Grant(account_claims(account), token)


async def sign_in_with_client_credentials(client_id: str, secret: str) -> Grant:
    client = await ServiceClient.find_one({"client_id": client_id})
    if client is None:
        await asyncio.to_thread(passwords.burn_time, secret)
        ok = False
    else:
        ok = await asyncio.to_thread(passwords.verify, client.secret_hash, secret)
    if not ok or client is None or not client.active:
        raise Unauthenticated("Client authentication failed", reason="invalid_client")
    return Grant(client_claims(client))


async def revoke_family(family_id: str) -> None:
    await db.collection(RefreshToken).update_many(
        {"family_id": family_id}, {"$set": {"revoked": True, "updated_at": utcnow()}}
    )


async def refresh(token: str, *, refresh_ttl: int, totp_required: RolesCheck = _never) -> Grant:
    """Trade a refresh token for a new grant; each token works once.

    Marking the token used is a single compare-and-set, so two concurrent uses cannot both
    win; the loser (or any later replay) is treated as theft and revokes the whole family.
    """
    stored = await RefreshToken.find_one({"token_hash": _token_hash(token)})
    if stored is None:
        raise Unauthenticated("Invalid refresh token", reason="invalid_refresh_token")
    if stored.revoked:
        raise Unauthenticated("Invalid refresh token", reason="revoked_refresh_token")
    now = utcnow()
    if stored.expires_at <= now:
        raise Unauthenticated("Invalid refresh token", reason="expired_refresh_token")
    claimed = await db.collection(RefreshToken).update_one(
        {"_id": stored.id, "used_at": None, "revoked": False},
        {"$set": {"used_at": now, "updated_at": now}},
    )
    if claimed.modified_count == 0:
        await revoke_family(stored.family_id)
        raise Unauthenticated("Invalid refresh token", reason="refresh_token_reuse")
    account = await Account.get(stored.account_id)
    if (
        account is None
        or not account.active
        or account.id is None
        or not await _staff_active(account)
    ):
        await revoke_family(stored.family_id)  # a disabled account's sessions end for good
        raise Unauthenticated("Invalid refresh token", reason="inactive_account")
    if account.totp_secret is None and totp_required(account.roles):
        # A session from before the role required a second factor: sign in again and enrol.
        await revoke_family(stored.family_id)
        raise Unauthenticated("Two-factor sign-in is required", reason="mfa_enrolment_required")
    new_token = await _new_refresh_token(account.id, stored.family_id, refresh_ttl)
    return Grant(account_claims(account), new_token)


async def update_account(
    account_id: ObjectId, *, active: bool | None = None, roles: Iterable[Role] | None = None
) -> Account:
    """Enable or disable an account, or change its roles. Like every write it ends in
    ``services.changes.changed``, which drops the cached status: tokens already issued are
    refused (``account_disabled``) or lose the roles from the next request on."""
    changes: dict[str, Any] = {}
    if active is not None:
        changes["active"] = active
    if roles is not None:
        changes["roles"] = list(dict.fromkeys(Role(r) for r in roles))
    account = await get_or_404(Account, account_id, "Account")
    return await update(account, changes, "account") if changes else account


async def update_service_client(client_id: str, *, active: bool) -> ServiceClient:
    """Enable or disable a machine client; its tokens follow at once, as an account's do."""
    client = await ServiceClient.find_one({"client_id": client_id})
    if client is None:
        raise NotFound("ServiceClient", client_id)
    return await update(client, {"active": active}, "service client")


def _subject(value: str) -> str:
    subject = value.strip()
    require(bool(subject), "subject", "is required")
    require(len(subject) <= MAX_SUBJECT_LENGTH, "subject", "is too long")
    return subject


async def link_identity(
    subject: str,
    *,
    account_id: ObjectId | None = None,
    username: str | None = None,
    roles: Iterable[Role] | None = None,
    patient_id: ObjectId | None = None,
    staff_id: ObjectId | None = None,
    display_name: str | None = None,
) -> Account:
    """Tie an external IdP's ``subject`` (its ``sub``) to an account, named by ``account_id``
    or ``username``; a ``username`` no account has creates one that signs in only through the
    IdP (``roles`` required). ``roles``, ``patient_id`` and ``staff_id`` given replace the
    account's (a staff link also sets its department); the result must satisfy what creating
    the account would (a patient account names its patient, a clinician's its staff record).

    One subject, one account: a subject linked elsewhere, or an account linked to another
    subject, is ``CONFLICT`` (unlink first), so a link is never moved silently. Linking the
    same pair again just applies the other changes. Takes effect on the subject's next request.
    """
    subject = _subject(subject)
    require((account_id is None) != (username is None), "accountId", "give accountId or username")
    role_list = None if roles is None else list(dict.fromkeys(Role(r) for r in roles))
    require(role_list is None or bool(role_list), "roles", "must not be empty")
    account: Account | None
    if account_id is not None:
        account = await get_or_404(Account, account_id, "Account")
    else:
        account = await Account.find_one({"username": str(username).strip().lower()})
    holder = await Account.find_one({"idp_subject": subject})
    if holder is not None and (account is None or holder.id != account.id):
        raise Conflict(
            f"This subject is linked to account {holder.username}; unlink it first",
            fields=["subject"],
        )
    if account is None:
        if role_list is None:
            raise BadUserInput("roles: are required to create an account", {"roles": "required"})
        return await create_account(
            str(username),
            None,
            role_list,
            patient_id=patient_id,
            staff_id=staff_id,
            display_name=display_name,
            idp_subject=subject,
        )
    if account.idp_subject not in (None, subject):
        raise Conflict(
            "This account is linked to another subject; unlink it first", fields=["accountId"]
        )
    held = role_list or account.roles
    changes: dict[str, Any] = {"idp_subject": subject}
    if role_list is not None:
        changes["roles"] = role_list
    if display_name is not None:
        changes["display_name"] = display_name
    if patient_id is not None:
        await ensure_exists(Patient, patient_id, "patientId", "patient")
        changes["patient_id"] = patient_id
    if staff_id is not None:
        record = await _staff_record(held, staff_id)
        changes["staff_id"] = staff_id
        changes["department_id"] = getattr(record, "department_id", None)
    require(
        Role.PATIENT not in held or (patient_id or account.patient_id) is not None,
        "patientId",
        "is required for a patient account",
    )
    require(
        not set(held) & _NEEDS_STAFF_RECORD or (staff_id or account.staff_id) is not None,
        "staffId",
        "is required for a clinician account",
    )
    return await update(account, changes, "account")


async def unlink_identity(subject: str) -> Account:
    """Untie ``subject`` from its account (which stays, with its records): from its next
    request the subject is an unlinked IdP user again, with no record of its own."""
    subject = _subject(subject)
    account = await Account.find_one({"idp_subject": subject})
    if account is None:
        raise NotFound("ExternalIdentity", subject)
    unlinked = await update(
        account, {"idp_subject": None}, "account", expected={"idp_subject": subject}
    )
    # The write's own invalidation names the account as it is now, without the subject: drop
    # what is cached about the subject too, or it would keep the link until the status TTL.
    await status.current().forget(account)
    return unlinked


# -- the account lifecycle over GraphQL ---------------------------------------------------------


def check_new_password(password: str, username: str) -> None:
    """The policy for a password a person chooses: long, not their username, not common."""
    field = "newPassword"
    require(
        len(password) >= MIN_USER_PASSWORD_LENGTH,
        field,
        f"must be at least {MIN_USER_PASSWORD_LENGTH} characters",
    )
    require(len(password) <= passwords.MAX_PASSWORD_LENGTH, field, "is too long")
    folded = password.strip().lower()
    require(username.lower() not in folded, field, "must not contain the username")
    require(folded not in COMMON_PASSWORDS, field, "is too common")


async def revoke_account_tokens(account_id: ObjectId) -> None:
    """End every refresh-token family of the account (after a password change or reset)."""
    await db.collection(RefreshToken).update_many(
        {"account_id": account_id, "revoked": False},
        {"$set": {"revoked": True, "updated_at": utcnow()}},
    )


async def issue_ticket(
    account_id: ObjectId, purpose: TicketPurpose, ttl: int
) -> tuple[str, datetime]:
    """A new one-time token for ``purpose``; earlier ones of the account for it stop working."""
    await db.collection(AccountTicket).delete_many({"account_id": account_id, "purpose": purpose})
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    await AccountTicket(
        token_hash=_token_hash(token),
        account_id=account_id,
        purpose=purpose,
        expires_at=expires,
        created_at=now,
        updated_at=now,
    ).insert()
    return token, expires


def _bad_ticket(reason: str) -> Unauthenticated:
    return Unauthenticated("Invalid or expired token", reason=reason)


async def find_ticket(token: str, purpose: TicketPurpose) -> tuple[AccountTicket, Account]:
    """The unused, unexpired ticket ``token`` names, and its active account."""
    ticket = await AccountTicket.find_one({"token_hash": _token_hash(token), "purpose": purpose})
    if ticket is None:
        raise _bad_ticket("invalid_ticket")
    if ticket.used_at is not None:
        raise _bad_ticket("used_ticket")
    if ticket.expires_at <= utcnow():
        raise _bad_ticket("expired_ticket")
    account = await Account.get(ticket.account_id)
    if account is None or not account.active:
        raise _bad_ticket("inactive_account")
    return ticket, account


async def claim_ticket(ticket: AccountTicket) -> datetime:
    """Use ``ticket`` up: one compare-and-set, so of two concurrent uses one wins."""
    now = utcnow()
    claimed = await db.collection(AccountTicket).update_one(
        {"_id": ticket.id, "used_at": None, "expires_at": {"$gt": now}},
        {"$set": {"used_at": now, "updated_at": now}},
    )
    if claimed.modified_count == 0:
        raise _bad_ticket("used_ticket")
    return now


async def release_ticket(ticket: AccountTicket, claimed_at: datetime) -> None:
    """Compensation: the step the ticket was claimed for failed, so it may be used again."""
    await db.collection(AccountTicket).update_one(
        {"_id": ticket.id, "used_at": claimed_at}, {"$unset": {"used_at": ""}}
    )


async def complete_password_reset(token: str, new_password: str) -> Account:
    """Set the password a reset (or account-creation) token was issued for; the token is then
    used up and every session of the account ends."""
    ticket, account = await find_ticket(token, TicketPurpose.PASSWORD)
    check_new_password(new_password, account.username)
    password_hash = await asyncio.to_thread(passwords.hash_password, new_password)
    claimed_at = await claim_ticket(ticket)
    try:
        done = await update(account, {"password_hash": password_hash}, "account")
    except BaseException:
        await release_ticket(ticket, claimed_at)
        raise
    assert done.id is not None
    await revoke_account_tokens(done.id)
    return done


async def change_password(account_id: ObjectId, current: str, new: str) -> Account:
    """A person changes their own password, proving the current one; their other sessions'
    refresh tokens are revoked (a stolen session ends with the old password)."""
    account = await get_or_404(Account, account_id, "Account")
    stored = account.password_hash
    if stored is None:
        raise Conflict(
            "This account signs in through the identity provider; it has no password here",
            fields=["currentPassword"],
        )
    if not await asyncio.to_thread(passwords.verify, stored, current):
        raise BadUserInput(
            "currentPassword: is not your password", {"currentPassword": "is not your password"}
        )
    check_new_password(new, account.username)
    require(new != current, "newPassword", "must differ from the current password")
    password_hash = await asyncio.to_thread(passwords.hash_password, new)
    done = await update(
        account, {"password_hash": password_hash}, "account", expected={"password_hash": stored}
    )
    await revoke_account_tokens(account_id)
    return done


async def _links(
    roles: list[Role], staff_id: ObjectId | None, patient_id: ObjectId | None
) -> ObjectId | None:
    """Check that the records an account acts as fit its roles; returns its department.

    A patient account holds the patient role alone and names an existing patient (a patient
    link makes every other row foreign to its holder). A staff role names a record in that
    role's collection (``auth.status.STAFF_MODELS``), so roles held together must agree on it.
    """
    require(bool(roles), "roles", "must not be empty")
    if Role.PATIENT in roles:
        require(roles == [Role.PATIENT], "roles", "a patient account holds the patient role only")
        require(patient_id is not None, "patientId", "is required for a patient account")
        require(staff_id is None, "staffId", "a patient account names no staff record")
        await ensure_exists(Patient, patient_id, "patientId", "patient")
        return None
    require(patient_id is None, "patientId", "only a patient account names a patient")
    models = {_STAFF_RECORDS[r] for r in roles if r in _STAFF_RECORDS}
    if len(models) > 1:
        kinds = ", ".join(sorted(m.__name__ for m in models))
        raise BadUserInput(
            f"roles: act as records of different kinds ({kinds})",
            {"roles": f"act as records of different kinds ({kinds})"},
        )
    if not models:
        if staff_id is None:
            return None
        return getattr(await _staff_record(roles, staff_id), "department_id", None)
    (model,) = models
    require(staff_id is not None, "staffId", f"is required: these roles act as a {model.__name__}")
    record = await model.get(staff_id)
    if record is None:
        raise BadUserInput(
            f"staffId: no {model.__name__} {staff_id}", {"staffId": f"no such {model.__name__}"}
        )
    department: ObjectId | None = getattr(record, "department_id", None)
    return department


async def create_account_with_ticket(
    username: str,
    roles: Iterable[Role],
    *,
    ttl: int,
    staff_id: ObjectId | None = None,
    patient_id: ObjectId | None = None,
    display_name: str | None = None,
) -> tuple[Account, str, datetime]:
    """An admin creates an account with no password: the one-time token returned lets its
    owner choose one (``complete_password_reset``). An admin never knows a user's password."""
    role_list = list(dict.fromkeys(Role(r) for r in roles))
    department_id = await _links(role_list, staff_id, patient_id)
    account = build(
        Account,
        {
            "username": username,
            "roles": role_list,
            "display_name": display_name,
            "patient_id": patient_id,
            "staff_id": staff_id,
            "department_id": department_id,
        },
    )
    created = await insert(account, "account")
    assert created.id is not None
    token, expires = await issue_ticket(created.id, TicketPurpose.PASSWORD, ttl)
    return created, token, expires


async def link_account(
    account_id: ObjectId, *, staff_id: ObjectId | None = None, patient_id: ObjectId | None = None
) -> Account:
    """Point the account at a (new) staff or patient record, checked against its roles."""
    require(staff_id is not None or patient_id is not None, "staffId", "give staffId or patientId")
    account = await get_or_404(Account, account_id, "Account")
    department_id = await _links(list(account.roles), staff_id, patient_id)
    changes = {"staff_id": staff_id, "patient_id": patient_id, "department_id": department_id}
    return await update(account, changes, "account", expected={"roles": account.roles})


async def set_roles(
    account_id: ObjectId, roles: Iterable[Role], *, actor: ObjectId | None
) -> Account:
    """Replace the account's roles (checked against its links); tokens lose dropped roles at
    their next request. An admin cannot take the admin role from themselves (lock-out)."""
    role_list = list(dict.fromkeys(Role(r) for r in roles))
    account = await get_or_404(Account, account_id, "Account")
    if actor == account.id and Role.ADMIN not in role_list:
        raise Conflict("You cannot remove your own admin role", fields=["roles"])
    department_id = await _links(role_list, account.staff_id, account.patient_id)
    changes = {"roles": role_list, "department_id": department_id}
    expected = {"staff_id": account.staff_id, "patient_id": account.patient_id}
    return await update(account, changes, "account", expected=expected)


async def set_active(account_id: ObjectId, active: bool, *, actor: ObjectId | None) -> Account:
    """Disable or re-enable; a disabled account's tokens are refused from the next request
    (``services.changes.changed`` drops its cached status) and its refresh tokens revoked."""
    account = await get_or_404(Account, account_id, "Account")
    if not active and actor == account.id:
        raise Conflict("You cannot disable your own account", fields=["id"])
    if account.active == active:
        return account
    done = await update(account, {"active": active}, "account", expected={"active": not active})
    if not active:
        await revoke_account_tokens(account_id)
    return done


async def reset_password(account_id: ObjectId, *, ttl: int) -> tuple[Account, str, datetime]:
    """A one-time token with which the owner sets a new password (the old one keeps working
    until then); only the newest token issued works."""
    account = await get_or_404(Account, account_id, "Account")
    token, expires = await issue_ticket(account_id, TicketPurpose.PASSWORD, ttl)
    return account, token, expires


async def rotate_client_secret(client_id: str) -> tuple[ServiceClient, str]:
    """A new secret, shown once; the old one stops working at once (compare-and-set on the
    hash, so of two concurrent rotations one wins and the other is ``CONFLICT``)."""
    client = await ServiceClient.find_one({"client_id": client_id})
    if client is None:
        raise NotFound("ServiceClient", client_id)
    secret = secrets.token_urlsafe(32)
    secret_hash = await asyncio.to_thread(passwords.hash_password, secret)
    rotated = await update(
        client,
        {"secret_hash": secret_hash},
        "service client",
        expected={"secret_hash": client.secret_hash},
    )
    return rotated, secret


async def enrolment_grant(account_id: ObjectId, *, refresh_ttl: int) -> Grant:
    """The sign-in that completes a required enrolment: the enrolment token stood for the
    password and the confirming code for the second factor."""
    account = await Account.get(account_id)
    if account is None or not account.active or not await _staff_active(account):
        raise Unauthenticated("Invalid or expired token", reason="inactive_account")
    assert account.id is not None
    token = await _new_refresh_token(account.id, secrets.token_urlsafe(16), refresh_ttl)
    return Grant(account_claims(account), token)


async def reset_totp(account_id: ObjectId, *, actor: ObjectId | None) -> Account:
    """Turn TOTP off for someone who lost their authenticator (an admin, after checking who is
    asking): no code is needed, so an admin may not do it to their own account, and the
    account's refresh tokens are revoked (whoever holds the lost device signs in again). Where
    the role requires TOTP, the next sign-in asks to enrol again."""
    account = await get_or_404(Account, account_id, "Account")
    if actor == account.id:
        raise Conflict("You cannot reset your own two-factor sign-in", fields=["accountId"])
    if account.totp_secret is None and account.totp_pending_secret is None:
        raise Conflict("Two-factor sign-in is not on", fields=["totp"])
    done = await update(
        account,
        {"totp_secret": None, "totp_pending_secret": None, "totp_last_step": None},
        "account",
    )
    await revoke_account_tokens(account_id)
    return done
