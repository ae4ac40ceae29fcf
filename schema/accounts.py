"""GraphQL types for accounts and service clients (admins only), and the answers of the
account mutations that hand out a secret once."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import accounts as m
from schema.access import Role
from schema.common import entity_id, ref_id


@strawberry.type(
    description="A person who signs in: roles, the records they act as, and the external "
    "identity provider's subject linked to them (admins only)."
)
class Account:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    username: str
    display_name: str | None
    roles: list[Role]
    active: bool = strawberry.field(description="A disabled account's tokens are refused.")
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Whether the account signs in with a TOTP code as well.")
    @staticmethod
    def totp_enabled(root: strawberry.Parent[m.Account]) -> bool:
        return root.totp_secret is not None

    @strawberry.field(description="The external IdP's `sub` that signs in as this account.")
    @staticmethod
    def external_subject(root: strawberry.Parent[m.Account]) -> str | None:
        return root.idp_subject

    @strawberry.field(description="The patient this account is (role patient).")
    @staticmethod
    def patient_id(root: strawberry.Parent[m.Account]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field(description="The staff record this account acts as.")
    @staticmethod
    def staff_id(root: strawberry.Parent[m.Account]) -> strawberry.ID | None:
        return ref_id(root.staff_id)

    @strawberry.field(description="The department this account works in.")
    @staticmethod
    def department_id(root: strawberry.Parent[m.Account]) -> strawberry.ID | None:
        return ref_id(root.department_id)


@strawberry.type(description="A machine client signing in with client credentials (admins only).")
class ServiceClient:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    client_id: str
    name: str
    roles: list[Role]
    active: bool = strawberry.field(description="A disabled client's tokens are refused.")
    created_at: datetime
    updated_at: datetime


@strawberry.input(description="A new account; its owner sets the password with the token.")
class CreateAccountInput:
    username: str = strawberry.field(description="Lower-cased; unique regardless of case.")
    roles: list[Role]
    display_name: str
    staff_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Required for staff roles: a record in that role's collection (a doctor "
        "for doctor and radiologist, a nurse, an admin staff member for front desk and billing).",
    )
    patient_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required for the patient role (which is held alone)."
    )


@strawberry.type(description="A one-time token, shown only in this answer.")
class OneTimeToken:
    token: str = strawberry.field(
        description="POST it with `new_password` to `/oauth/password-reset`; single use."
    )
    expires_at: datetime


@strawberry.type(description="A created account and the one-time token to set its password.")
class AccountCreated:
    account: Account
    password_set: OneTimeToken


@strawberry.type(description="A service client's new secret, shown only in this answer.")
class ClientSecretRotated:
    client: ServiceClient
    secret: str = strawberry.field(description="The old secret no longer works.")


@strawberry.type(description="A begun TOTP enrolment: add it to an authenticator app.")
class TotpEnrolment:
    secret: str = strawberry.field(description="Base32, for typing in by hand.")
    uri: str = strawberry.field(description="An `otpauth://` URI, for a QR code.")
