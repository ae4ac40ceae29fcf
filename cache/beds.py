"""The live bed board in Redis: every bed of a ward or a department without asking MongoDB.

Keys, under the namespace of ``cache.equipment`` (one per database):

- ``<ns>:bed:<id>``: a hash with what the board shows of one bed (label, status, ward,
  department, occupant's patient and admission, incoming, blocked reason, status time) and its
  ``version`` (the bed document's, raised by every write of the bed);
- ``<ns>:ward-beds:<ward_id>`` and ``<ns>:dept-beds:<department_id>``: sets of bed ids, plus
  the member ``*`` once the set was filled completely from MongoDB.

How it stays equal to MongoDB (the source of truth), as the equipment board does:

- every bed write ends in ``services.changes.changed``; the bus's publish hook (``on_event``)
  reads the bed back and writes its hash and set memberships in one WATCH/MULTI transaction,
  only if its version is not older than the one Redis holds, so writers landing out of order
  never leave an older state behind;
- sets only grow; readers keep only the beds whose own hash still names the ward or
  department; a set without ``*`` is loaded from MongoDB on read, and so is a missing hash;
- ``rebuild`` (at start-up) loads every bed; keys expire a day after their last write; any
  Redis failure answers from MongoDB (logged).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bson import ObjectId
from redis.exceptions import WatchError

import db
from cache.equipment import namespace
from cache.live import Slot
from config import Settings
from events.bus import Bus
from events.types import DomainEvent
from models.base import utcnow
from models.departments import Department
from models.wards import Bed, BedStatus, Ward

log = logging.getLogger(__name__)

BoardKind = Literal["ward", "department"]
READY = "*"
TTL_SECONDS = 24 * 3600
MAX_ATTEMPTS = 10
BATCH = 500
BEDS = str(Bed.Settings.name)
_OWNERS: dict[str, BoardKind] = {
    str(Ward.Settings.name): "ward",
    str(Department.Settings.name): "department",
}
_PROJECT = {
    "label": 1,
    "status": 1,
    "ward_id": 1,
    "department_id": 1,
    "patient_id": 1,
    "admission_id": 1,
    "pending": 1,
    "blocked_reason": 1,
    "status_at": 1,
    "active": 1,
    "version": 1,
}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _oid(value: str) -> ObjectId | None:
    return ObjectId(value) if value else None


@dataclass(frozen=True)
class BedEntry:
    """One bed as the board shows it."""

    id: ObjectId
    label: str
    status: BedStatus
    ward_id: ObjectId
    department_id: ObjectId
    patient_id: ObjectId | None
    admission_id: ObjectId | None
    incoming: bool
    blocked_reason: str | None
    status_at: datetime
    active: bool
    version: int

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> BedEntry:
        at = raw.get("status_at") or utcnow()
        if at.tzinfo is None:
            at = at.replace(tzinfo=utcnow().tzinfo)
        return cls(
            id=raw["_id"],
            label=raw["label"],
            status=BedStatus(raw["status"]),
            ward_id=raw["ward_id"],
            department_id=raw["department_id"],
            patient_id=raw.get("patient_id"),
            admission_id=raw.get("admission_id"),
            incoming=bool(raw.get("pending")),
            blocked_reason=raw.get("blocked_reason"),
            status_at=at,
            active=bool(raw.get("active", True)),
            version=int(raw.get("version", 0)),
        )

    @classmethod
    def from_hash(cls, id: ObjectId, raw: Mapping[bytes | str, bytes | str]) -> BedEntry:
        h = {_text(k): _text(v) for k, v in raw.items()}
        return cls(
            id=id,
            label=h["label"],
            status=BedStatus(h["status"]),
            ward_id=ObjectId(h["ward_id"]),
            department_id=ObjectId(h["department_id"]),
            patient_id=_oid(h.get("patient_id", "")),
            admission_id=_oid(h.get("admission_id", "")),
            incoming=h.get("incoming") == "1",
            blocked_reason=h.get("blocked_reason") or None,
            status_at=datetime.fromisoformat(h["status_at"]),
            active=h.get("active", "1") == "1",
            version=int(h["version"]),
        )

    def to_hash(self) -> dict[str, str]:
        return {
            "label": self.label,
            "status": self.status.value,
            "ward_id": str(self.ward_id),
            "department_id": str(self.department_id),
            "patient_id": str(self.patient_id or ""),
            "admission_id": str(self.admission_id or ""),
            "incoming": "1" if self.incoming else "0",
            "blocked_reason": self.blocked_reason or "",
            "status_at": self.status_at.isoformat(),
            "active": "1" if self.active else "0",
            "version": str(self.version),
        }

    def belongs(self, kind: BoardKind, key: ObjectId) -> bool:
        return (self.ward_id if kind == "ward" else self.department_id) == key


@dataclass(frozen=True)
class Board:
    """The beds of one ward or department, by ward then label, and how many in each state
    (``incoming`` beds count as occupied too)."""

    kind: BoardKind
    key: ObjectId
    beds: list[BedEntry] = field(default_factory=list)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def counts(self) -> Counter[str]:
        found: Counter[str] = Counter(b.status.value for b in self.beds)
        found["incoming"] = sum(1 for b in self.beds if b.incoming)
        found["total"] = len(self.beds)
        return found


def _ordered(kind: BoardKind, key: ObjectId, entries: Sequence[BedEntry]) -> Board:
    beds = sorted(entries, key=lambda e: (str(e.ward_id), e.label, str(e.id)))
    return Board(kind, key, beds)


async def load(query: Mapping[str, Any]) -> list[BedEntry]:
    cursor = db.collection(Bed).find(dict(query), projection=_PROJECT)
    return [BedEntry.from_document(raw) for raw in await cursor.to_list(None)]


def _query(kind: BoardKind, key: ObjectId) -> dict[str, Any]:
    return {"ward_id" if kind == "ward" else "department_id": key}


class LiveBeds:
    def __init__(self, redis: Any, namespace: str, ttl: int = TTL_SECONDS) -> None:
        self._redis = redis
        self._ns = namespace
        self._ttl = ttl

    def item_key(self, id: ObjectId | str) -> str:
        return f"{self._ns}:bed:{id}"

    def board_key(self, kind: BoardKind, key: ObjectId | str) -> str:
        return f"{self._ns}:{'ward' if kind == 'ward' else 'dept'}-beds:{key}"

    # -- writing -----------------------------------------------------------------------------

    async def on_event(self, event: DomainEvent) -> None:
        """The bus hook: bring Redis in step with the write that produced ``event``."""
        try:
            if event.entity == BEDS:
                await self.write(await load({"_id": ObjectId(event.id)}))
            elif event.entity in _OWNERS and event.change == "created":
                await self._mark_ready(_OWNERS[event.entity], [ObjectId(event.id)])
        except Exception:
            log.warning("bed board: %s %s not updated", event.entity, event.id, exc_info=True)

    async def write(self, entries: Sequence[BedEntry]) -> None:
        for start in range(0, len(entries), BATCH):
            await self._write_batch(entries[start : start + BATCH])

    async def _write_batch(self, batch: Sequence[BedEntry]) -> None:
        keys = [self.item_key(e.id) for e in batch]
        for _ in range(MAX_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as tx:
                try:
                    await tx.watch(*keys)
                    reads = self._redis.pipeline(transaction=False)
                    for key in keys:
                        reads.hget(key, "version")
                    stored = await reads.execute()
                    tx.multi()
                    for entry, key, version in zip(batch, keys, stored, strict=True):
                        if version is not None and int(version) > entry.version:
                            continue  # Redis holds a newer state of this bed already
                        tx.hset(key, mapping=entry.to_hash())
                        tx.expire(key, self._ttl)
                        for kind in ("ward", "department"):
                            owner = entry.ward_id if kind == "ward" else entry.department_id
                            members = self.board_key(kind, owner)
                            tx.sadd(members, str(entry.id))
                            tx.expire(members, self._ttl)
                    await tx.execute()
                    return
                except WatchError:
                    continue
        raise RuntimeError(f"bed board: gave up after {MAX_ATTEMPTS} attempts")

    async def _mark_ready(self, kind: BoardKind, keys: Sequence[ObjectId]) -> None:
        if not keys:
            return
        marks = self._redis.pipeline(transaction=False)
        for key in keys:
            marks.sadd(self.board_key(kind, key), READY)
            marks.expire(self.board_key(kind, key), self._ttl)
        await marks.execute()

    async def rebuild(self) -> int:
        """Load every bed from MongoDB (at start-up); returns how many there are."""
        entries = await load({})
        await self.write(entries)
        await self._mark_ready("ward", sorted({e.ward_id for e in entries}))
        await self._mark_ready("department", sorted({e.department_id for e in entries}))
        return len(entries)

    # -- reading -----------------------------------------------------------------------------

    async def board(self, kind: BoardKind, key: ObjectId) -> Board:
        try:
            return await self._board(kind, key)
        except Exception:
            log.warning("bed board read failed; answering from MongoDB", exc_info=True)
            return _ordered(kind, key, await load(_query(kind, key)))

    async def _board(self, kind: BoardKind, key: ObjectId) -> Board:
        set_key = self.board_key(kind, key)
        members = {_text(m) for m in await self._redis.smembers(set_key)}
        if READY not in members:
            entries = await load(_query(kind, key))
            await self.write(entries)
            await self._mark_ready(kind, [key])
            return _ordered(kind, key, entries)
        ids = sorted(members - {READY})
        reads = self._redis.pipeline(transaction=False)
        for id in ids:
            reads.hgetall(self.item_key(id))
        found: list[BedEntry] = []
        missing: list[ObjectId] = []
        for id, raw in zip(ids, await reads.execute(), strict=True):
            if raw:
                found.append(BedEntry.from_hash(ObjectId(id), raw))
            else:
                missing.append(ObjectId(id))
        if missing:
            loaded = await load({"_id": {"$in": missing}})
            await self.write(loaded)
            found += loaded
        return _ordered(kind, key, [e for e in found if e.belongs(kind, key)])


SLOT: Slot[LiveBeds] = Slot("bed board", "beds")


def current() -> LiveBeds | None:
    """The running app's view; ``None`` outside one (then MongoDB answers)."""
    return SLOT.current


async def start(redis: Any, settings: Settings, bus: Bus) -> LiveBeds:
    return await SLOT.start(LiveBeds(redis, namespace(settings)), bus)


async def board(kind: BoardKind, key: ObjectId) -> Board:
    live = current()
    if live is None:
        return _ordered(kind, key, await load(_query(kind, key)))
    return await live.board(kind, key)
