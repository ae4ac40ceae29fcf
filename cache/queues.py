"""Live outpatient queues in Redis, so a queue or a waiting-room screen is read without MongoDB.

Keys, under the namespace of ``cache.equipment`` (one per database):

- ``<ns>:opd-visit:<id>``: a hash with what a queue shows of one visit (status, priority, queue
  number, clinic, doctor, arrival and call times, room) and its ``version``; never the patient;
- ``<ns>:opd-queue:department:<id>`` and ``<ns>:opd-queue:doctor:<id>``: sorted sets of the
  queued (waiting or called) visits of a clinic or a doctor, scored by priority class, then
  check-in time (ties by id, as MongoDB orders them), plus the member ``*`` once the set was
  filled completely from MongoDB.

How it stays equal to MongoDB (the source of truth):

- Every visit write ends in ``services.changes.changed``; the bus's publish hook (``on_event``)
  reads the visit back and writes its hash and memberships in one WATCH/MULTI transaction,
  only if its ``version`` is not older than the one Redis holds, so writers landing out of order
  never leave an older state behind.
- A queue is (re)filled by ``refresh``: it WATCHes the queue's key, reads the queue from MongoDB
  and replaces the set in one transaction; a write landing meanwhile touches the key, so the
  refresh starts again rather than dropping it.
- At start-up ``rebuild`` drops every queue set and refills the queues that have patients; a
  set without ``*`` (never loaded, flushed, expired) is refilled on its first read, and so is a
  queue whose member has lost its hash.
- Keys expire a day after their last write, so an entry missed while Redis was unreachable heals
  by itself; any Redis failure answers from MongoDB (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from beanie import Document
from bson import ObjectId
from redis.exceptions import WatchError

import db
from cache.equipment import namespace
from cache.live import Slot
from config import Settings
from events.bus import Bus
from events.types import DomainEvent
from models.departments import Department
from models.outpatient import QUEUED_STATUSES, OutpatientVisit, VisitPriority, VisitStatus
from models.staff import Doctor

log = logging.getLogger(__name__)

QueueKind = Literal["department", "doctor"]
READY = "*"
TTL_SECONDS = 24 * 3600
MAX_ATTEMPTS = 10
SCORE_SPAN = 10**13
"""Check-in instants in milliseconds stay below this until the year 2286: the score is exact."""
VISITS = str(OutpatientVisit.Settings.name)
_QUEUED = frozenset(s.value for s in QUEUED_STATUSES)
_PROJECT = {
    "department_id": 1,
    "doctor_id": 1,
    "status": 1,
    "priority": 1,
    "priority_rank": 1,
    "queue_number": 1,
    "queue_date": 1,
    "checked_in_at": 1,
    "called_at": 1,
    "called_to": 1,
    "version": 1,
}
_ORDER = [("priority_rank", 1), ("checked_in_at", 1), ("_id", 1)]
_OWNERS: dict[str, QueueKind] = {
    str(Department.Settings.name): "department",
    str(Doctor.Settings.name): "doctor",
}
"""Whose queues there are: a created clinic or doctor starts with an empty, complete one."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


@dataclass(frozen=True)
class QueueEntry:
    """What a queue shows of one visit: no names, no patient id."""

    id: ObjectId
    department_id: ObjectId
    doctor_id: ObjectId | None
    status: VisitStatus
    priority: VisitPriority
    priority_rank: int
    queue_number: int
    queue_date: str
    checked_in_at: datetime
    called_at: datetime | None
    called_to: str | None
    version: int

    @property
    def queued(self) -> bool:
        return self.status.value in _QUEUED

    @property
    def score(self) -> int:
        return self.priority_rank * SCORE_SPAN + _ms(self.checked_in_at)

    @property
    def order(self) -> tuple[int, int, str]:
        return (self.priority_rank, _ms(self.checked_in_at), str(self.id))

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> QueueEntry:
        def utc(value: Any) -> datetime | None:
            if not isinstance(value, datetime):
                return None
            return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

        checked_in = utc(raw["checked_in_at"])
        assert checked_in is not None
        return cls(
            id=raw["_id"],
            department_id=raw["department_id"],
            doctor_id=raw.get("doctor_id"),
            status=VisitStatus(raw["status"]),
            priority=VisitPriority(raw["priority"]),
            priority_rank=int(raw.get("priority_rank", 2)),
            queue_number=int(raw["queue_number"]),
            queue_date=str(raw["queue_date"]),
            checked_in_at=checked_in,
            called_at=utc(raw.get("called_at")),
            called_to=raw.get("called_to"),
            version=int(raw.get("version", 0)),
        )

    @classmethod
    def from_hash(cls, id: ObjectId, raw: Mapping[bytes | str, bytes | str]) -> QueueEntry:
        h = {_text(k): _text(v) for k, v in raw.items()}
        return cls(
            id=id,
            department_id=ObjectId(h["department_id"]),
            doctor_id=ObjectId(h["doctor_id"]) if h.get("doctor_id") else None,
            status=VisitStatus(h["status"]),
            priority=VisitPriority(h["priority"]),
            priority_rank=int(h["priority_rank"]),
            queue_number=int(h["queue_number"]),
            queue_date=h["queue_date"],
            checked_in_at=datetime.fromisoformat(h["checked_in_at"]),
            called_at=datetime.fromisoformat(h["called_at"]) if h.get("called_at") else None,
            called_to=h.get("called_to") or None,
            version=int(h["version"]),
        )

    def to_hash(self) -> dict[str, str]:
        return {
            "department_id": str(self.department_id),
            "doctor_id": str(self.doctor_id) if self.doctor_id is not None else "",
            "status": self.status.value,
            "priority": self.priority.value,
            "priority_rank": str(self.priority_rank),
            "queue_number": str(self.queue_number),
            "queue_date": self.queue_date,
            "checked_in_at": self.checked_in_at.isoformat(),
            "called_at": self.called_at.isoformat() if self.called_at else "",
            "called_to": self.called_to or "",
            "version": str(self.version),
        }

    def belongs(self, kind: QueueKind, key: ObjectId) -> bool:
        owner = self.department_id if kind == "department" else self.doctor_id
        return self.queued and owner == key


@dataclass(frozen=True)
class Queue:
    """One queue in order, with each waiting visit's position (called visits have none)."""

    kind: QueueKind
    key: ObjectId
    entries: tuple[QueueEntry, ...]

    def positions(self) -> dict[ObjectId, int]:
        waiting = [e for e in self.entries if e.status == VisitStatus.WAITING]
        return {e.id: n for n, e in enumerate(waiting, start=1)}

    def position(self, id: ObjectId) -> int | None:
        return self.positions().get(id)

    @property
    def version(self) -> int:
        """Changes whenever an entry of the queue changes (for screens that poll)."""
        return sum(e.version for e in self.entries) + len(self.entries)


def _query(kind: QueueKind, key: ObjectId) -> dict[str, Any]:
    field = "department_id" if kind == "department" else "doctor_id"
    return {"status": {"$in": sorted(_QUEUED)}, field: key}


async def load(query: Mapping[str, Any]) -> list[QueueEntry]:
    """Queue entries straight from MongoDB, in queue order (one indexed query)."""
    cursor = db.collection(OutpatientVisit).find(dict(query), _PROJECT).sort(_ORDER)
    return [QueueEntry.from_document(raw) for raw in await cursor.to_list(None)]


async def from_mongo(kind: QueueKind, key: ObjectId) -> Queue:
    return Queue(kind, key, tuple(await load(_query(kind, key))))


class LiveQueues:
    def __init__(self, redis: Any, namespace: str, ttl: int = TTL_SECONDS) -> None:
        self._redis = redis
        self._ns = namespace
        self._ttl = ttl

    def item_key(self, id: ObjectId | str) -> str:
        return f"{self._ns}:opd-visit:{id}"

    def queue_key(self, kind: QueueKind, key: ObjectId | str) -> str:
        return f"{self._ns}:opd-queue:{kind}:{key}"

    def _queues_of(self, entry: QueueEntry) -> list[str]:
        keys = [self.queue_key("department", entry.department_id)]
        if entry.doctor_id is not None:
            keys.append(self.queue_key("doctor", entry.doctor_id))
        return keys

    # -- writing -----------------------------------------------------------------------------

    async def on_event(self, event: DomainEvent) -> None:
        """The bus hook: bring Redis in step with the visit write that produced ``event``."""
        try:
            if event.entity == VISITS:
                found = await load({"_id": ObjectId(event.id)})
                if found:
                    await self.write(found[0])
            elif event.change == "created" and event.entity in _OWNERS:
                # A new clinic or doctor has nobody waiting: its queue is complete as it is.
                await self._mark_ready(_OWNERS[event.entity], [ObjectId(event.id)])
        except Exception:
            log.warning("live queue of %s %s not updated", event.entity, event.id, exc_info=True)

    async def _mark_ready(self, kind: QueueKind, keys: Sequence[ObjectId]) -> None:
        """Say these queues are complete (only when no visit of theirs can be missing)."""
        marks = self._redis.pipeline(transaction=False)
        for key in keys:
            marks.zadd(self.queue_key(kind, key), {READY: -1})
            marks.expire(self.queue_key(kind, key), self._ttl)
        await marks.execute()

    async def write(self, entry: QueueEntry) -> None:
        """One visit's hash and memberships, unless Redis already holds a newer state."""
        key = self.item_key(entry.id)
        for _ in range(MAX_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as tx:
                try:
                    await tx.watch(key)
                    version, department, doctor = await self._redis.hmget(
                        key, "version", "department_id", "doctor_id"
                    )
                    if version is not None and int(version) > entry.version:
                        return  # Redis already holds a newer state of this visit
                    tx.multi()
                    tx.hset(key, mapping=entry.to_hash())
                    tx.expire(key, self._ttl)
                    mine = set(self._queues_of(entry))
                    before = set()
                    if department is not None:
                        before.add(self.queue_key("department", _text(department)))
                    if doctor:
                        before.add(self.queue_key("doctor", _text(doctor)))
                    for old in sorted(before - mine):
                        tx.zrem(old, str(entry.id))
                    for queue in sorted(mine):
                        if entry.queued:
                            tx.zadd(queue, {str(entry.id): entry.score})
                            tx.expire(queue, self._ttl)
                        else:
                            tx.zrem(queue, str(entry.id))
                    await tx.execute()
                    return
                except WatchError:
                    continue  # another writer touched this visit: read again
        raise RuntimeError(f"live queues: gave up writing visit {entry.id}")

    async def refresh(self, kind: QueueKind, key: ObjectId) -> Queue:
        """Replace one queue with MongoDB's (see the module for why no write is lost)."""
        queue_key = self.queue_key(kind, key)
        for _ in range(MAX_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as tx:
                try:
                    await tx.watch(queue_key)
                    entries = await load(_query(kind, key))
                    item_keys = [self.item_key(e.id) for e in entries]
                    if item_keys:
                        await tx.watch(*item_keys)
                        reads = self._redis.pipeline(transaction=False)
                        for item in item_keys:
                            reads.hget(item, "version")
                        versions = await reads.execute()
                    else:
                        versions = []
                    tx.multi()
                    tx.delete(queue_key)
                    tx.zadd(queue_key, {READY: -1})
                    for entry, item, stored in zip(entries, item_keys, versions, strict=True):
                        tx.zadd(queue_key, {str(entry.id): entry.score})
                        if stored is None or int(stored) <= entry.version:
                            tx.hset(item, mapping=entry.to_hash())
                            tx.expire(item, self._ttl)
                    tx.expire(queue_key, self._ttl)
                    await tx.execute()
                    return Queue(kind, key, tuple(entries))
                except WatchError:
                    continue
        raise RuntimeError(f"live queues: gave up refreshing {kind} {key}")

    async def rebuild(self) -> int:
        """Drop every queue set and refill the queues that have patients (at start-up)."""
        # Large SCAN pages: the keyspace holds much besides queues (the default page of 10
        # made start-up one round trip per ten keys of the whole Redis).
        stale = [
            k async for k in self._redis.scan_iter(match=f"{self._ns}:opd-queue:*", count=10_000)
        ]
        for start in range(0, len(stale), 500):
            await self._redis.delete(*stale[start : start + 500])
        entries = await load({"status": {"$in": sorted(_QUEUED)}})
        departments = sorted({e.department_id for e in entries})
        doctors = sorted({e.doctor_id for e in entries if e.doctor_id is not None})
        for department in departments:
            await self.refresh("department", department)
        for doctor in doctors:
            await self.refresh("doctor", doctor)
        # Every other clinic and doctor has an empty queue: say so, or its first read would
        # ask MongoDB. A visit written meanwhile would have refilled its queue by itself.
        owners: tuple[tuple[type[Document], QueueKind], ...] = (
            (Department, "department"),
            (Doctor, "doctor"),
        )
        for model, kind in owners:
            busy = set(departments if kind == "department" else doctors)
            ids = await db.collection(model).distinct("_id")
            idle = [i for i in ids if i not in busy]
            for start in range(0, len(idle), 500):
                await self._mark_ready_if_absent(kind, idle[start : start + 500])
        return len(entries)

    async def _mark_ready_if_absent(self, kind: QueueKind, keys: Sequence[ObjectId]) -> None:
        """Mark idle queues complete: nobody waited in them when the visits were loaded, and
        every visit since went through the hook (NX keeps a marker's score as it is)."""
        marks = self._redis.pipeline(transaction=False)
        for key in keys:
            marks.zadd(self.queue_key(kind, key), {READY: -1}, nx=True)
        await marks.execute()

    # -- reading -----------------------------------------------------------------------------

    async def queue(self, kind: QueueKind, key: ObjectId) -> Queue:
        """One queue in order; from Redis, or from MongoDB if Redis fails."""
        try:
            return await self._queue(kind, key)
        except Exception:
            log.warning("live queue read failed; answering from MongoDB", exc_info=True)
            return await from_mongo(kind, key)

    async def _queue(self, kind: QueueKind, key: ObjectId) -> Queue:
        raw = await self._redis.zrange(self.queue_key(kind, key), 0, -1)
        members = [_text(m) for m in raw]
        if READY not in members:
            return await self.refresh(kind, key)
        ids = [m for m in members if m != READY]
        reads = self._redis.pipeline(transaction=False)
        for id in ids:
            reads.hgetall(self.item_key(id))
        found: list[QueueEntry] = []
        for id, raw in zip(ids, await reads.execute(), strict=True):
            if not raw:
                return await self.refresh(kind, key)  # a hash expired or was evicted
            found.append(QueueEntry.from_hash(ObjectId(id), raw))
        kept = sorted((e for e in found if e.belongs(kind, key)), key=lambda e: e.order)
        return Queue(kind, key, tuple(kept))


SLOT: Slot[LiveQueues] = Slot("outpatient queues", "visits")


def current() -> LiveQueues | None:
    """The running app's view; ``None`` outside one (then MongoDB answers)."""
    return SLOT.current


async def start(redis: Any, settings: Settings, bus: Bus) -> LiveQueues:
    return await SLOT.start(LiveQueues(redis, namespace(settings)), bus)


async def queue(kind: QueueKind, key: ObjectId) -> Queue:
    live = current()
    if live is None:
        return await from_mongo(kind, key)
    return await live.queue(kind, key)


async def queues(wanted: Sequence[tuple[QueueKind, ObjectId]]) -> dict[tuple[str, ObjectId], Queue]:
    """Several queues at once (for positions on a page of visits)."""
    return {(kind, key): await queue(kind, key) for kind, key in dict.fromkeys(wanted)}
