"""GraphQL types and inputs for wards, beds and the live bed board."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from cache import beds as live
from models import wards as m
from schema.common import Connection, connection, entity_id, ref_id
from schema.context import Context, Info

if TYPE_CHECKING:
    from schema.admissions import Admission
    from schema.departments import Department
    from schema.patients import Patient

strawberry.enum(m.WardType)
WardType = m.WardType
strawberry.enum(m.SexPolicy, description="Which patients a ward admits.")
SexPolicy = m.SexPolicy
strawberry.enum(
    m.BedStatus,
    description="available -> occupied (admission) -> cleaning (discharge, transfer out) -> "
    "available; available or cleaning <-> blocked (out of service).",
)
BedStatus = m.BedStatus


@strawberry.type(description="A ward of a department: its type, sex policy and beds.")
class Ward:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    name: str
    code: str
    type: WardType
    sex_policy: SexPolicy
    capacity: int
    location: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.Ward]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.Ward], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field(description="The ward's beds by label.")
    @staticmethod
    async def beds(
        root: strawberry.Parent[m.Ward],
        info: Info,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Bed]:
        key = (root.id, info.context.page(first, after), ())
        return connection(Bed, await info.context.loaders.beds_by_ward.load(key))


@strawberry.type(description="A bed of a ward, and who lies in it.")
class Bed:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    label: str
    status: BedStatus
    status_at: datetime
    active: bool
    claimed_at: datetime | None
    blocked_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @strawberry.field(
        description="Occupied for an admission that does not name it yet (a transfer or "
        "admission in flight): the patient is on the way."
    )
    @staticmethod
    def incoming(root: strawberry.Parent[m.Bed]) -> bool:
        return root.pending

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[m.Bed]) -> strawberry.ID:
        return strawberry.ID(str(root.ward_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[m.Bed]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[m.Bed]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[m.Bed]) -> strawberry.ID | None:
        return ref_id(root.admission_id)

    @strawberry.field
    @staticmethod
    async def ward(root: strawberry.Parent[m.Bed], info: Info) -> Ward | None:
        return await info.context.loaders.ward_by_id.load(root.ward_id)

    @strawberry.field
    @staticmethod
    async def department(
        root: strawberry.Parent[m.Bed], info: Info
    ) -> Annotated[Department, strawberry.lazy("schema.departments")] | None:
        return await info.context.loaders.department_by_id.load(root.department_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[m.Bed], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        if root.patient_id is None:
            return None
        return await info.context.loaders.patient_by_id.load(root.patient_id)

    @strawberry.field(description="The admission holding the bed.")
    @staticmethod
    async def admission(
        root: strawberry.Parent[m.Bed], info: Info
    ) -> Annotated[Admission, strawberry.lazy("schema.admissions")] | None:
        if root.admission_id is None:
            return None
        return await info.context.loaders.admission_by_id.load(root.admission_id)


# -- the live board --------------------------------------------------------------------------


@strawberry.type(description="Beds per state; incoming beds are counted as occupied too.")
class BedBoardCounts:
    available: int
    occupied: int
    incoming: int
    cleaning: int
    blocked: int
    total: int


@strawberry.type(description="One bed on the live board.")
class BedBoardEntry:
    label: str
    status: BedStatus
    incoming: bool = strawberry.field(
        description="Claimed for an admission or transfer not yet complete: occupied, incoming."
    )
    status_at: datetime
    blocked_reason: str | None
    active: bool
    version: int

    @strawberry.field
    @staticmethod
    def id(root: strawberry.Parent[live.BedEntry]) -> strawberry.ID:
        return strawberry.ID(str(root.id))

    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[live.BedEntry]) -> strawberry.ID:
        return strawberry.ID(str(root.ward_id))

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[live.BedEntry]) -> strawberry.ID:
        return strawberry.ID(str(root.department_id))

    @strawberry.field
    @staticmethod
    def patient_id(root: strawberry.Parent[live.BedEntry]) -> strawberry.ID | None:
        return ref_id(root.patient_id)

    @strawberry.field
    @staticmethod
    def admission_id(root: strawberry.Parent[live.BedEntry]) -> strawberry.ID | None:
        return ref_id(root.admission_id)

    @strawberry.field
    @staticmethod
    async def patient(
        root: strawberry.Parent[live.BedEntry], info: Info
    ) -> Annotated[Patient, strawberry.lazy("schema.patients")] | None:
        if root.patient_id is None:
            return None
        return await info.context.loaders.patient_by_id.load(root.patient_id)


@strawberry.type(description="The live bed board of one ward or one department, from Redis.")
class BedBoard:
    @strawberry.field
    @staticmethod
    def ward_id(root: strawberry.Parent[live.Board]) -> strawberry.ID | None:
        return strawberry.ID(str(root.key)) if root.kind == "ward" else None

    @strawberry.field
    @staticmethod
    def department_id(root: strawberry.Parent[live.Board]) -> strawberry.ID | None:
        return strawberry.ID(str(root.key)) if root.kind == "department" else None

    @strawberry.field(description="When this board was read.")
    @staticmethod
    def updated_at(root: strawberry.Parent[live.Board]) -> datetime:
        return root.updated_at

    @strawberry.field
    @staticmethod
    def counts(root: strawberry.Parent[live.Board]) -> BedBoardCounts:
        c = root.counts
        return BedBoardCounts(
            available=c["available"],
            occupied=c["occupied"],
            incoming=c["incoming"],
            cleaning=c["cleaning"],
            blocked=c["blocked"],
            total=c["total"],
        )

    @strawberry.field(description="By ward, then label.")
    @staticmethod
    def beds(root: strawberry.Parent[live.Board]) -> list[BedBoardEntry]:
        return root.beds  # type: ignore[return-value]


@strawberry.type(description="A bed board after a change (``snapshot`` first).")
class BedBoardEvent:
    change: str = strawberry.field(description="`snapshot`, then the bed write's change.")
    at: datetime
    bed_id: strawberry.ID | None = strawberry.field(description="The bed that changed.")
    board: BedBoard
    context: strawberry.Private[Context]


# -- inputs ----------------------------------------------------------------------------------


@strawberry.input
class CreateWardInput:
    name: str
    code: str
    department_id: strawberry.ID
    type: WardType = WardType.GENERAL
    sex_policy: SexPolicy = SexPolicy.MIXED
    capacity: int
    location: str | None = None


@strawberry.input(description="Only the fields given change; the department never does.")
class UpdateWardInput:
    name: str | None = strawberry.UNSET
    type: WardType | None = strawberry.UNSET
    sex_policy: SexPolicy | None = strawberry.UNSET
    capacity: int | None = strawberry.UNSET
    location: str | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


@strawberry.input
class CreateBedInput:
    ward_id: strawberry.ID
    label: str
