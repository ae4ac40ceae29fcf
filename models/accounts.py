"""Who may sign in: user accounts, machine clients, and the refresh tokens handed to accounts."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import pymongo
from pydantic import BeforeValidator, Field, StringConstraints

from auth.policy import ADMIN_ONLY, Rel, declare, each, grant, group, row
from auth.policy import Classification as Class
from auth.roles import Role
from crypto.fields import sealed
from models.base import Entity, Name, Ref, UtcDatetime


def _fold(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Username = Annotated[
    str,
    BeforeValidator(_fold),
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._@-]{1,63}$"),
]
"""Stored lower-cased: the unique index then makes usernames unique regardless of case."""

ClientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")]


class Account(Entity):
    """A person who signs in: staff, a patient, or an operator such as an analyst.

    The links say which records are "theirs": ``patient_id`` for a patient, ``staff_id`` and
    ``department_id`` for staff. ``idp_subject`` ties the account to an external IdP's ``sub``
    (set by an admin, ``services.accounts.link_identity``): with an IdP, an account's links are
    the only source of a caller's records, since the IdP's tokens cannot name them.
    """

    username: Username
    password_hash: str | None = None  # None: the account signs in through the external IdP only
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    display_name: Name | None = None
    patient_id: Ref | None = None
    staff_id: Ref | None = None
    department_id: Ref | None = None
    idp_subject: str | None = Field(default=None, min_length=1, max_length=255)
    active: bool = True
    # TOTP (RFC 6238), base32; sealed at rest (``ACCOUNT_SEALED`` below).
    totp_secret: str | None = None  # set: the account signs in with a code
    totp_pending_secret: str | None = None  # begun, not yet confirmed with a code
    totp_last_step: int | None = None  # the last time step accepted: each code works once

    class Settings:
        name = "accounts"
        # Absent rather than null, so the sparse unique index on idp_subject skips local users.
        keep_nulls = False
        indexes = [
            pymongo.IndexModel("username", unique=True),
            pymongo.IndexModel("idp_subject", unique=True, sparse=True),
            pymongo.IndexModel("patient_id", sparse=True),
            pymongo.IndexModel("staff_id", sparse=True),
        ]


def _secret_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


# Sealed at rest: a patient's account names the patient, and a TOTP secret in clear would let
# whoever reads a backup mint codes. Compare-and-set on a secret (``services.totp``) matches its
# keyed hash, ``totp_key`` or ``totp_pending_key``, never the secret.
ACCOUNT_SEALED = sealed(
    Account,
    "accounts",
    ("display_name", "totp_secret", "totp_pending_secret"),
    {
        "totp_key": ("totp_secret", _secret_text),
        "totp_pending_key": ("totp_pending_secret", _secret_text),
    },
)


LINK_IDENTITY = "linkIdentity"
UNLINK_IDENTITY = "unlinkIdentity"
CREATE_ACCOUNT = "createAccount"
LINK_ACCOUNT = "linkAccount"
SET_ROLES = "setAccountRoles"
DISABLE = "disableAccount"
ENABLE = "enableAccount"
RESET_PASSWORD = "resetPassword"
CHANGE_PASSWORD = "changePassword"
ENROL_TOTP = "enrolTotp"
DISABLE_TOTP = "disableTotp"
RESET_TOTP = "resetTotp"
ROTATE_SECRET = "rotateClientSecret"

PEOPLE = [r for r in Role if r is not Role.SERVICE]
"""Roles a person signs in with; machine clients have secrets, not passwords."""
OWN_ACCOUNT = each(PEOPLE, grant(Rel.SELF))
"""Self-service: only on the caller's own account (``Principal.account_id``)."""

# Accounts are security data: only admins see them; each person manages their own password and
# second factor, and nobody else's (not even an admin: they issue a reset token instead).
ACCOUNT = declare(
    "Account",
    Account,
    row(
        Class.SECURITY,
        (
            "id",
            "username",
            "roles",
            "active",
            "externalSubject",
            "totpEnabled",
            "createdAt",
            "updatedAt",
        ),
        ADMIN_ONLY,
    ),
    group("person", Class.IDENTITY, ("displayName",), ADMIN_ONLY),
    group("links", Class.OPERATIONAL, ("patientId", "staffId", "departmentId"), ADMIN_ONLY),
    actions={
        LINK_IDENTITY: ADMIN_ONLY,
        UNLINK_IDENTITY: ADMIN_ONLY,
        CREATE_ACCOUNT: ADMIN_ONLY,
        LINK_ACCOUNT: ADMIN_ONLY,
        SET_ROLES: ADMIN_ONLY,
        DISABLE: ADMIN_ONLY,
        ENABLE: ADMIN_ONLY,
        RESET_PASSWORD: ADMIN_ONLY,
        CHANGE_PASSWORD: OWN_ACCOUNT,
        ENROL_TOTP: OWN_ACCOUNT,
        DISABLE_TOTP: OWN_ACCOUNT,
        RESET_TOTP: ADMIN_ONLY,
    },
    own=(("id", "account_id"),),
    creates=frozenset({CREATE_ACCOUNT}),
)


class ServiceClient(Entity):
    """A machine client (say, a dashboard) signing in with the client-credentials grant."""

    client_id: ClientId
    secret_hash: str
    roles: list[Role] = Field(min_length=1, max_length=len(Role))
    name: Name
    active: bool = True

    class Settings:
        name = "service_clients"
        indexes = [pymongo.IndexModel("client_id", unique=True)]


SERVICE_CLIENT = declare(
    "ServiceClient",
    ServiceClient,
    row(
        Class.SECURITY,
        ("id", "clientId", "name", "roles", "active", "createdAt", "updatedAt"),
        ADMIN_ONLY,
    ),
    actions={ROTATE_SECRET: ADMIN_ONLY},
)


class TicketPurpose(StrEnum):
    PASSWORD = "password"  # set a new password (account creation, admin reset)
    TOTP_ENROLMENT = "totp_enrolment"  # enrol a second factor before the first sign-in


class AccountTicket(Entity):
    """A one-time token for an unauthenticated step, stored only as its SHA-256.

    Single use: redeeming it is one compare-and-set on ``used_at``; expired ones are refused
    and then dropped by MongoDB. Issuing a new one for the same purpose drops the older ones.
    """

    token_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    account_id: Ref
    purpose: TicketPurpose
    expires_at: UtcDatetime
    used_at: UtcDatetime | None = None

    class Settings:
        name = "account_tickets"
        keep_nulls = False
        indexes = [
            pymongo.IndexModel("token_hash", unique=True),
            pymongo.IndexModel([("account_id", 1), ("purpose", 1)]),
            pymongo.IndexModel("expires_at", expireAfterSeconds=0),
        ]


class RefreshToken(Entity):
    """One refresh token, stored only as its SHA-256: a database leak yields no usable token.

    Every token descends from a sign-in ``family_id``; each is usable once, and presenting a
    used one again revokes the whole family (the token was stolen, or the client replayed it).
    """

    token_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    account_id: Ref
    family_id: str
    expires_at: UtcDatetime
    used_at: UtcDatetime | None = None
    revoked: bool = False

    class Settings:
        name = "refresh_tokens"
        keep_nulls = False
        indexes = [
            pymongo.IndexModel("token_hash", unique=True),
            pymongo.IndexModel("family_id"),
            # MongoDB drops expired tokens by itself; nothing reads them after expiry anyway.
            pymongo.IndexModel("expires_at", expireAfterSeconds=0),
        ]
