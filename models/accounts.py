"""Who may sign in: user accounts, machine clients, and the refresh tokens handed to accounts."""

from __future__ import annotations

from typing import Annotated

import pymongo
from pydantic import BeforeValidator, Field, StringConstraints

from auth.policy import ADMIN_ONLY, declare, group, row
from auth.policy import Classification as Class
from auth.roles import Role
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


LINK_IDENTITY = "linkIdentity"
UNLINK_IDENTITY = "unlinkIdentity"

# Accounts are security data: only admins see them (answers of the identity-link mutations).
ACCOUNT = declare(
    "Account",
    Account,
    row(
        Class.SECURITY,
        ("id", "username", "roles", "active", "externalSubject", "createdAt", "updatedAt"),
        ADMIN_ONLY,
    ),
    group("person", Class.IDENTITY, ("displayName",), ADMIN_ONLY),
    group("links", Class.OPERATIONAL, ("patientId", "staffId", "departmentId"), ADMIN_ONLY),
    actions={LINK_IDENTITY: ADMIN_ONLY, UNLINK_IDENTITY: ADMIN_ONLY},
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
