"""Wards and beds: creating them, and the housekeeping steps of a bed's status.

Occupying and vacating a bed belong to admissions (``services.admissions``); here a bed is
blocked (out of service, with a reason) and unblocked, and marked clean. Every step is one
compare-and-set on the bed's status (and version when the client gives one), so a bed never
moves from a state it is no longer in: blocking an occupied bed, or cleaning one a transfer just
claimed, is ``CONFLICT`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bson import ObjectId

from errors import BadUserInput, Conflict
from models.base import utcnow
from models.departments import Department
from models.wards import Bed, BedStatus, Ward
from services import common
from services.admissions import bed_cas
from services.changes import changed
from services.pagination import ASC, Page, PageArgs, Query, Sort, both, paginate
from services.validation import Problems

BY_NAME: Sort = (("name", ASC), ("_id", ASC))
BY_LABEL: Sort = (("ward_id", ASC), ("label", ASC), ("_id", ASC))


# -- reads -----------------------------------------------------------------------------------


async def get_ward(id: ObjectId) -> Ward:
    return await common.get_or_404(Ward, id, "Ward")


async def get_bed(id: ObjectId) -> Bed:
    return await common.get_or_404(Bed, id, "Bed")


async def list_wards(query: Query, args: PageArgs, scope: Query | None) -> Page[Ward]:
    return await paginate(Ward, both(query, scope), BY_NAME, args)


def bed_filter(
    *,
    ward_id: ObjectId | None = None,
    department_id: ObjectId | None = None,
    statuses: tuple[BedStatus, ...] = (),
) -> Query:
    query: Query = {}
    if ward_id is not None:
        query["ward_id"] = ward_id
    if department_id is not None:
        query["department_id"] = department_id
    if statuses:
        query["status"] = {"$in": [s.value for s in statuses]}
    return query


async def list_beds(query: Query, args: PageArgs, scope: Query | None) -> Page[Bed]:
    return await paginate(Bed, both(query, scope), BY_LABEL, args)


# -- wards -----------------------------------------------------------------------------------


async def create_ward(data: Mapping[str, Any]) -> Ward:
    problems = Problems()
    now = utcnow()
    ward = problems.build(Ward, {**data, "created_at": now, "updated_at": now, "version": 0})
    await problems.check(
        common.ensure_exists(Department, data.get("department_id"), "departmentId", "department")
    )
    problems.raise_any()
    assert ward is not None
    return await common.insert(ward, "ward")


async def update_ward(
    id: ObjectId, changes: Mapping[str, Any], expected_version: int | None = None
) -> Ward:
    """Rename, retype, resize, open or close a ward (its department stays: its beds carry it)."""
    ward = await get_ward(id)
    if "department_id" in changes:
        raise BadUserInput("A ward stays in its department", {"departmentId": "is not updatable"})
    if expected_version is not None and expected_version != ward.version:
        raise Conflict("The ward changed meanwhile; read it again and retry")
    changes = {**changes, "version": ward.version + 1}
    return await common.update(ward, changes, "ward", expected={"version": ward.version})


# -- beds ------------------------------------------------------------------------------------


async def create_bed(data: Mapping[str, Any]) -> Bed:
    problems = Problems()
    ward_id = data.get("ward_id")
    ward = await Ward.get(ward_id) if isinstance(ward_id, ObjectId) else None
    problems.require(ward is not None, "wardId", "no such ward")
    now = utcnow()
    bed = problems.build(
        Bed,
        {
            "ward_id": ward_id,
            "label": data.get("label"),
            "department_id": ward.department_id if ward else ObjectId(),
            "status": BedStatus.AVAILABLE,
            "status_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    problems.raise_any()
    assert bed is not None
    return await common.insert(bed, "bed")


async def _step(
    id: ObjectId,
    allowed: tuple[BedStatus, ...],
    sets: Mapping[str, Any],
    expected_version: int | None,
    what: str,
    change: str,
) -> Bed:
    bed = await get_bed(id)
    if bed.status not in allowed:
        raise Conflict(
            f"A bed that is {bed.status.value} cannot be {what}",
            field="id",
            bedStatus=bed.status.value,
        )
    if expected_version is not None and expected_version != bed.version:
        raise Conflict("The bed changed meanwhile; read it again and retry")
    version = bed.version if expected_version is None else expected_version
    stored = await bed_cas(id, {"status": bed.status.value, "version": version}, sets)
    if stored is None:
        raise Conflict("The bed changed meanwhile; read it again and retry")
    await changed(stored, change)
    return stored


async def block_bed(id: ObjectId, reason: str, expected_version: int | None = None) -> Bed:
    """Take a free or cleaning bed out of service (never an occupied one)."""
    problems = Problems()
    problems.build(
        Bed, {"ward_id": id, "department_id": id, "label": "x", "blocked_reason": reason}
    )
    problems.raise_any()
    return await _step(
        id,
        (BedStatus.AVAILABLE, BedStatus.CLEANING),
        {"status": BedStatus.BLOCKED, "blocked_reason": reason},
        expected_version,
        "blocked",
        "blocked",
    )


async def unblock_bed(id: ObjectId, expected_version: int | None = None) -> Bed:
    """Back into service, free."""
    return await _step(
        id,
        (BedStatus.BLOCKED,),
        {"status": BedStatus.AVAILABLE, "blocked_reason": None},
        expected_version,
        "unblocked",
        "unblocked",
    )


async def mark_cleaned(id: ObjectId, expected_version: int | None = None) -> Bed:
    return await _step(
        id,
        (BedStatus.CLEANING,),
        {"status": BedStatus.AVAILABLE},
        expected_version,
        "marked clean",
        "cleaned",
    )
