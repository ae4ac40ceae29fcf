"""GraphQL type for accounts: what an admin sees after linking an external identity."""

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
