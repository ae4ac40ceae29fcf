"""Live equipment status in Redis, so a dashboard reads a department's devices without MongoDB.

Keys, under a namespace per database (see ``namespace``):

- ``<ns>:equipment:<id>``: a hash with the device's status, department_id, name, equipment_type,
  updated_at and revision;
- ``<ns>:dept-equipment:<department_id>``: the set of the department's device ids, plus the
  member ``*`` once the set was filled completely from MongoDB.

How it stays equal to MongoDB:

- It is written from the event bus's publish hook (``on_event``), which every service write
  passes through, in the process that wrote, before the event is sent: no service can forget it.
- A device is written with WATCH/MULTI only if its revision (how many status changes and moves
  it has seen) is not older than the one Redis holds, so writers landing out of order, or a
  rebuild racing a write, can never leave an older status behind. Its move between departments
  happens in that same transaction.
- Department sets only grow from loads; readers keep only the devices whose own hash still names
  the department, so a stale member is never shown.
- A set without ``*`` (never loaded, expired, flushed) is loaded from MongoDB and backfilled on
  read, and so is a missing device hash.
- Every key expires a day after its last write, so an entry missed while Redis was unreachable
  heals by itself; and any Redis failure falls back to MongoDB (logged and counted).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from redis.exceptions import WatchError

import db
import metrics
from cache.live import Slot
from config import Settings
from events.bus import Bus
from events.types import DomainEvent
from models.departments import Department
from models.equipment import EquipmentStatus, MedicalEquipment

log = logging.getLogger(__name__)

READY = "*"
TTL_SECONDS = 24 * 3600
BATCH = 500
MAX_ATTEMPTS = 10  # WATCH retries under contention before giving up (counted as an error)
EQUIPMENT = str(MedicalEquipment.Settings.name)
DEPARTMENTS = str(Department.Settings.name)

# The device's revision counts its history entries: each status change or move pushes exactly
# one, in the same single-document update, so it grows with every write of the device.
_PROJECT = {
    "name": 1,
    "equipment_type": 1,
    "status": 1,
    "department_id": 1,
    "updated_at": 1,
    "revision": {
        "$add": [
            {"$size": {"$ifNull": ["$status_history", []]}},
            {"$size": {"$ifNull": ["$allocation_history", []]}},
        ]
    },
}


def namespace(settings: Settings) -> str:
    """Per database; an embedded store lives and dies with its process, so its keys do too."""
    if settings.shms_cache_namespace:
        return settings.shms_cache_namespace
    base = f"{settings.shms_cache_prefix}:{settings.mongodb_db}"
    return f"{base}:{uuid.uuid4().hex[:12]}" if settings.embedded_mongo else base


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class StatusEntry:
    """One device's live status: what a department's status board shows."""

    id: ObjectId
    name: str
    equipment_type: str
    status: EquipmentStatus
    department_id: ObjectId
    updated_at: datetime
    revision: int

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> StatusEntry:
        return cls(
            id=raw["_id"],
            name=raw["name"],
            equipment_type=raw["equipment_type"],
            status=EquipmentStatus(raw["status"]),
            department_id=raw["department_id"],
            updated_at=raw["updated_at"],
            revision=int(raw["revision"]),
        )

    @classmethod
    def from_hash(cls, id: ObjectId, raw: Mapping[bytes | str, bytes | str]) -> StatusEntry:
        h = {_text(k): _text(v) for k, v in raw.items()}
        return cls(
            id=id,
            name=h["name"],
            equipment_type=h["equipment_type"],
            status=EquipmentStatus(h["status"]),
            department_id=ObjectId(h["department_id"]),
            updated_at=datetime.fromisoformat(h["updated_at"]),
            revision=int(h["revision"]),
        )

    def to_hash(self) -> dict[str, str]:
        return {
            "name": self.name,
            "equipment_type": self.equipment_type,
            "status": self.status.value,
            "department_id": str(self.department_id),
            "updated_at": self.updated_at.isoformat(),
            "revision": str(self.revision),
        }


def _ordered(entries: Iterable[StatusEntry]) -> list[StatusEntry]:
    return sorted(entries, key=lambda e: (e.name, str(e.id)))


async def load(query: Mapping[str, Any]) -> list[StatusEntry]:
    """Status entries straight from MongoDB (one aggregation; no history arrays shipped)."""
    cursor = db.collection(MedicalEquipment).aggregate(
        [{"$match": dict(query)}, {"$project": _PROJECT}]
    )
    return [StatusEntry.from_document(raw) for raw in await cursor.to_list(None)]


class LiveEquipment:
    def __init__(self, redis: Any, namespace: str, ttl: int = TTL_SECONDS) -> None:
        self._redis = redis
        self._ns = namespace
        self._ttl = ttl

    def item_key(self, id: ObjectId | str) -> str:
        return f"{self._ns}:equipment:{id}"

    def department_key(self, id: ObjectId | str) -> str:
        return f"{self._ns}:dept-equipment:{id}"

    # -- writing -----------------------------------------------------------------------------

    async def on_event(self, event: DomainEvent) -> None:
        """The bus hook: bring Redis in step with the write that produced ``event``.

        The device is read back from MongoDB rather than taken from the event: the event names
        what changed, and the revision guard keeps whichever state is the newest.
        """
        try:
            if event.entity == EQUIPMENT:
                await self.write(await load({"_id": ObjectId(event.id)}))
            elif event.entity == DEPARTMENTS and event.change == "created":
                await self._mark_ready([ObjectId(event.id)])  # a new department has no devices
        except Exception:
            metrics.EQUIPMENT_STATUS_ERRORS.labels("write").inc()
            log.warning("live status of %s %s not updated", event.entity, event.id, exc_info=True)

    async def write(self, entries: Sequence[StatusEntry]) -> None:
        for start in range(0, len(entries), BATCH):
            await self._write_batch(entries[start : start + BATCH])

    async def _write_batch(self, batch: Sequence[StatusEntry]) -> None:
        keys = [self.item_key(e.id) for e in batch]
        for _ in range(MAX_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as tx:
                try:
                    await tx.watch(*keys)
                    reads = self._redis.pipeline(transaction=False)
                    for key in keys:
                        reads.hmget(key, "revision", "department_id")
                    stored = await reads.execute()
                    tx.multi()
                    for entry, key, (revision, department) in zip(batch, keys, stored, strict=True):
                        if revision is not None and int(revision) > entry.revision:
                            continue  # Redis already holds a newer state of this device
                        tx.hset(key, mapping=entry.to_hash())
                        tx.expire(key, self._ttl)
                        if department is not None and _text(department) != str(entry.department_id):
                            tx.srem(self.department_key(_text(department)), str(entry.id))
                        members = self.department_key(entry.department_id)
                        tx.sadd(members, str(entry.id))
                        tx.expire(members, self._ttl)
                    await tx.execute()
                    return
                except WatchError:
                    continue  # another writer touched one of these devices: read again
        raise RuntimeError(f"live equipment status: gave up after {MAX_ATTEMPTS} attempts")

    async def _mark_ready(self, departments: Collection[ObjectId]) -> None:
        """Say these sets are complete; only after their devices from one load were written."""
        if not departments:
            return
        marks = self._redis.pipeline(transaction=False)
        for department in departments:
            marks.sadd(self.department_key(department), READY)
            marks.expire(self.department_key(department), self._ttl)
        await marks.execute()

    async def rebuild(self) -> int:
        """Load every device from MongoDB (at start-up); returns how many there are."""
        entries = await load({})
        await self.write(entries)
        await self._mark_ready({e.department_id for e in entries})
        return len(entries)

    # -- reading -----------------------------------------------------------------------------

    async def department(self, department_id: ObjectId) -> list[StatusEntry]:
        """The department's devices by name; from Redis, or from MongoDB if Redis fails."""
        try:
            return await self._department(department_id)
        except Exception:
            metrics.EQUIPMENT_STATUS_ERRORS.labels("read").inc()
            log.warning("live status read failed; answering from MongoDB", exc_info=True)
            return _ordered(await load({"department_id": department_id}))

    async def _department(self, department_id: ObjectId) -> list[StatusEntry]:
        key = self.department_key(department_id)
        members = {_text(m) for m in await self._redis.smembers(key)}
        if READY not in members:
            entries = await load({"department_id": department_id})
            await self.write(entries)
            await self._mark_ready([department_id])
            return _ordered(entries)
        ids = sorted(members - {READY})
        reads = self._redis.pipeline(transaction=False)
        for id in ids:
            reads.hgetall(self.item_key(id))
        found: list[StatusEntry] = []
        missing: list[ObjectId] = []
        for id, raw in zip(ids, await reads.execute(), strict=True):
            if raw:
                found.append(StatusEntry.from_hash(ObjectId(id), raw))
            else:
                missing.append(ObjectId(id))
        if missing:  # expired or evicted: backfill from MongoDB
            loaded = await load({"_id": {"$in": missing}})
            await self.write(loaded)
            found += loaded
            gone = {str(m) for m in missing} - {str(e.id) for e in loaded}
            if gone:  # deleted devices never come back: ObjectIds are not reused
                await self._redis.srem(key, *gone)
        return _ordered(e for e in found if e.department_id == department_id)


SLOT: Slot[LiveEquipment] = Slot("equipment status", "devices")


def current() -> LiveEquipment | None:
    """The running app's view; ``None`` outside one (then MongoDB answers)."""
    return SLOT.current


async def start(redis: Any, settings: Settings, bus: Bus) -> LiveEquipment:
    return await SLOT.start(
        LiveEquipment(redis, namespace(settings)),
        bus,
        failed=lambda: metrics.EQUIPMENT_STATUS_ERRORS.labels("rebuild").inc(),
    )


async def department_status(department_id: ObjectId) -> list[StatusEntry]:
    live = current()
    if live is None:
        return _ordered(await load({"department_id": department_id}))
    return await live.department(department_id)
