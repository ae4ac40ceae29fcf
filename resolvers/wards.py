"""Wards and beds, their housekeeping, and the live bed board (query and subscription)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from functools import partial

import strawberry
from bson import ObjectId

from auth.policy import Action
from auth.policy import EntityKind as K
from cache import beds as live_beds
from errors import BadUserInput, NotFound
from events.types import DomainEvent
from models.base import utcnow
from models.wards import Bed as BedDoc
from resolvers.common import perform
from resolvers.subscriptions import live
from schema.common import Connection, connection, create_data, oid, update_data, view
from schema.context import Info
from schema.enforce import acts, reads
from schema.wards import (
    Bed,
    BedBoard,
    BedBoardEvent,
    BedStatus,
    CreateBedInput,
    CreateWardInput,
    UpdateWardInput,
    Ward,
)
from services import wards

BEDS = str(BedDoc.Settings.name)
FIELD = "bedBoardChanged"
BLOCK, UNBLOCK, MARK_CLEANED = "block", "unblock", "markCleaned"


async def _board_of(
    info: Info, ward_id: strawberry.ID | None, department_id: strawberry.ID | None
) -> tuple[live_beds.BoardKind, ObjectId]:
    """Exactly one of a ward or a department, which must exist (``NOT_FOUND``)."""
    if (ward_id is None) == (department_id is None):
        raise BadUserInput(
            "Name exactly one board: wardId or departmentId",
            {"wardId": "give wardId or departmentId, not both or neither"},
        )
    loaders = info.context.loaders
    if ward_id is not None:
        key = oid(ward_id, "wardId")
        if await loaders.ward_by_id.load(key) is None:
            raise NotFound("Ward", str(key))
        return "ward", key
    assert department_id is not None
    key = oid(department_id, "departmentId")
    if await loaders.department_by_id.load(key) is None:
        raise NotFound("Department", str(key))
    return "department", key


async def _bed_step(
    info: Info,
    id: strawberry.ID,
    action: str,
    run: Callable[[ObjectId], Awaitable[BedDoc]],
    fields: list[str],
) -> Bed:
    bed = await wards.get_bed(oid(id))
    key = oid(id)
    done = await perform(info, K.BED, action, partial(run, key), fields, row=bed)
    return view(Bed, done)


@strawberry.type
class WardsQuery:
    @strawberry.field
    async def ward(self, info: Info, id: strawberry.ID) -> Ward | None:
        return await info.context.loaders.ward_by_id.load(oid(id))

    @strawberry.field(description="Wards by name, optionally of one department.")
    async def wards(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        active: bool | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Ward]:
        query: dict[str, object] = {}
        if department_id is not None:
            query["department_id"] = oid(department_id, "departmentId")
        if active is not None:
            query["active"] = active
        page = await wards.list_wards(
            query, info.context.page(first, after), await info.context.access.scope(K.WARD)
        )
        return connection(Ward, page)

    @strawberry.field
    async def bed(self, info: Info, id: strawberry.ID) -> Bed | None:
        return await info.context.loaders.bed_by_id.load(oid(id))

    @strawberry.field(description="Beds by ward and label (from MongoDB; bedBoard is live).")
    async def beds(
        self,
        info: Info,
        ward_id: strawberry.ID | None = None,
        department_id: strawberry.ID | None = None,
        status: list[BedStatus] | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Bed]:
        query = wards.bed_filter(
            ward_id=oid(ward_id, "wardId") if ward_id else None,
            department_id=oid(department_id, "departmentId") if department_id else None,
            statuses=tuple(status or ()),
        )
        page = await wards.list_beds(
            query, info.context.page(first, after), await info.context.access.scope(K.BED)
        )
        return connection(Bed, page)

    @strawberry.field(
        description="The live bed board of a ward or a department (Redis): counts per status "
        "and every bed; who lies in a bed only for those the policy lets see it."
    )
    async def bed_board(
        self,
        info: Info,
        ward_id: strawberry.ID | None = None,
        department_id: strawberry.ID | None = None,
    ) -> BedBoard:
        kind, key = await _board_of(info, ward_id, department_id)
        return view(BedBoard, await live_beds.board(kind, key))


@strawberry.type
class WardsMutation:
    @strawberry.mutation(metadata=acts(K.WARD, Action.CREATE))
    async def create_ward(self, info: Info, input: CreateWardInput) -> Ward:
        data = create_data(input)
        done = await perform(info, K.WARD, Action.CREATE, partial(wards.create_ward, data), data)
        return view(Ward, done)

    @strawberry.mutation(metadata=acts(K.WARD, Action.UPDATE))
    async def update_ward(
        self,
        info: Info,
        id: strawberry.ID,
        input: UpdateWardInput,
        expected_version: int | None = None,
    ) -> Ward:
        changes = update_data(input)
        ward = await wards.get_ward(oid(id))
        run = partial(wards.update_ward, ward.id, changes, expected_version)  # type: ignore[arg-type]
        done = await perform(info, K.WARD, Action.UPDATE, run, changes, row=ward)
        return view(Ward, done)

    @strawberry.mutation(metadata=acts(K.BED, Action.CREATE))
    async def create_bed(self, info: Info, input: CreateBedInput) -> Bed:
        data = create_data(input)
        done = await perform(info, K.BED, Action.CREATE, partial(wards.create_bed, data), data)
        return view(Bed, done)

    @strawberry.mutation(
        description="Take a free or cleaning bed out of service, with the reason.",
        metadata=acts(K.BED, BLOCK),
    )
    async def block_bed(
        self, info: Info, id: strawberry.ID, reason: str, expected_version: int | None = None
    ) -> Bed:
        run = partial(_block, reason=reason, expected_version=expected_version)
        return await _bed_step(info, id, BLOCK, run, ["status", "blocked_reason"])

    @strawberry.mutation(
        description="Put a blocked bed back into service (available).",
        metadata=acts(K.BED, UNBLOCK),
    )
    async def unblock_bed(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> Bed:
        run = partial(_unblock, expected_version=expected_version)
        return await _bed_step(info, id, UNBLOCK, run, ["status", "blocked_reason"])

    @strawberry.mutation(
        description="A cleaned bed is available again.", metadata=acts(K.BED, MARK_CLEANED)
    )
    async def mark_bed_cleaned(
        self, info: Info, id: strawberry.ID, expected_version: int | None = None
    ) -> Bed:
        run = partial(_cleaned, expected_version=expected_version)
        return await _bed_step(info, id, MARK_CLEANED, run, ["status"])


async def _block(id: ObjectId, *, reason: str, expected_version: int | None) -> BedDoc:
    return await wards.block_bed(id, reason, expected_version)


async def _unblock(id: ObjectId, *, expected_version: int | None) -> BedDoc:
    return await wards.unblock_bed(id, expected_version)


async def _cleaned(id: ObjectId, *, expected_version: int | None) -> BedDoc:
    return await wards.mark_cleaned(id, expected_version)


@strawberry.type
class WardsSubscription:
    @strawberry.subscription(
        description="A bed board screen: the board of a ward or a department at once, then "
        "again after every change of one of its beds (admission, transfer, discharge, "
        "cleaning, blocking).",
        metadata=reads(K.BED_BOARD),
    )
    async def bed_board_changed(
        self,
        info: Info,
        ward_id: strawberry.ID | None = None,
        department_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[BedBoardEvent, None]:
        kind, key = await _board_of(info, ward_id, department_id)
        ref = "ward_id" if kind == "ward" else "department_id"
        operation = info.operation.name.value if info.operation.name else FIELD
        async with live(info, FIELD, [BEDS]) as events:
            yield BedBoardEvent(
                change="snapshot",
                at=utcnow(),
                bed_id=None,
                board=view(BedBoard, await live_beds.board(kind, key)),
                context=info.context.for_event(operation),
            )
            async for event in events:
                if not _on_board(event, ref, key):
                    continue
                context = info.context.for_event(operation)
                # Decided afresh per event: a caller disabled meanwhile is refused here.
                await context.access.scope(K.BED_BOARD)
                yield BedBoardEvent(
                    change=event.change,
                    at=event.happened_at,
                    bed_id=strawberry.ID(event.id),
                    board=view(BedBoard, await live_beds.board(kind, key)),
                    context=context,
                )


def _on_board(event: DomainEvent, ref: str, key: ObjectId) -> bool:
    return event.refs.get(ref) == str(key)
