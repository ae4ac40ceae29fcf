"""GraphQL types for "who am I and what may I do", and emergency access grants."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry

from auth import policy
from auth.roles import Role as RoleEnum
from models import grants as m
from schema.common import entity_id

strawberry.enum(RoleEnum, description="What an account is allowed to be.")
Role = RoleEnum
_KINDS: Any = enum.Enum("EntityKind", [(d.constant, d.kind) for d in policy.REGISTRY])  # type: ignore[misc]
EntityKind: Any = strawberry.enum(
    _KINDS, name="EntityKind", description="Kinds of records (every declared entity)."
)
strawberry.enum(policy.Access, name="FieldAccess", description="How much of a field you see.")
FieldAccess = policy.Access


@strawberry.type
class FieldPermission:
    name: str
    access: FieldAccess


@strawberry.type(description="What the viewer may do with one kind of record, or one record.")
class Permissions:
    entity: EntityKind
    id: strawberry.ID | None
    visible: bool = strawberry.field(description="Whether the viewer may read this record (kind).")
    actions: list[str] = strawberry.field(description="Mutations the viewer may run on it.")
    fields: list[FieldPermission] = strawberry.field(description="Guarded fields and access.")


@strawberry.type(description="An emergency access grant (break-the-glass).")
class AccessGrant:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    reason: str
    expires_at: datetime
    created_at: datetime

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.AccessGrant]) -> strawberry.ID:
        return strawberry.ID(str(root.patient_id))
