"""The live emergency-department board in Redis, so the ED's screens read it without MongoDB.

Keys, under the namespace of ``cache.equipment`` (one per database):

- ``<ns>:ed-visit:<id>``: a hash with what the board shows of one open visit (status, acuity,
  arrival mode and times, assigned doctor) and its ``version``; never the patient;
- ``<ns>:ed-board:<department_id>``: a sorted set of the department's open visits, scored by
  acuity (awaiting triage first, then ESI 1 to 5), then arrival time (ties by id, as MongoDB
  orders them), plus the member ``*`` once the set was filled completely from MongoDB.

It stays equal to MongoDB as the outpatient queues do (``cache.queues``): every visit write ends
in ``services.changes.changed``, whose publish hook writes the visit's hash and membership in one
WATCH/MULTI transaction unless Redis holds a newer ``version``; ``refresh`` WATCHes the board's
key while it reloads it; ``rebuild`` (at start-up) drops every board and refills the busy ones;
a board without ``*`` or with a member lacking its hash is refilled on read; keys expire a day
after their last write, and any Redis failure answers from MongoDB (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from redis.exceptions import WatchError

import db
from cache.equipment import namespace
from cache.live import Slot
from config import Settings
from events.bus import Bus
from events.types import DomainEvent
from models.departments import Department
from models.emergency import OPEN_STATUSES, ArrivalMode, EmergencyStatus, EmergencyVisit

log = logging.getLogger(__name__)

READY = "*"
TTL_SECONDS = 24 * 3600
MAX_ATTEMPTS = 10
SCORE_SPAN = 10**13
"""Arrival instants in milliseconds stay below this until the year 2286: the score is exact."""
VISITS = str(EmergencyVisit.Settings.name)
DEPARTMENTS = str(Department.Settings.name)
_OPEN = sorted(s.value for s in OPEN_STATUSES)
_PROJECT = {
    "department_id": 1,
    "status": 1,
    "acuity_rank": 1,
    "triage.level": 1,
    "triage.triaged_at": 1,
    "arrival_mode": 1,
    "arrived_at": 1,
    "seen_at": 1,
    "assigned_doctor_id": 1,
    "version": 1,
}
_ORDER = [("acuity_rank", 1), ("arrived_at", 1), ("_id", 1)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(moment: datetime) -> int:
    return int(_utc(moment).timestamp() * 1000)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _when(value: Any) -> datetime | None:
    return _utc(value) if isinstance(value, datetime) else None


@dataclass(frozen=True)
class BoardEntry:
    """What the board shows of one visit: acuity, status and times; no patient."""

    id: ObjectId
    department_id: ObjectId
    status: EmergencyStatus
    acuity_rank: int
    level: int | None
    arrival_mode: ArrivalMode
    arrived_at: datetime
    triaged_at: datetime | None
    seen_at: datetime | None
    assigned_doctor_id: ObjectId | None
    version: int

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def score(self) -> int:
        return self.acuity_rank * SCORE_SPAN + _ms(self.arrived_at)

    @property
    def order(self) -> tuple[int, int, str]:
        return (self.acuity_rank, _ms(self.arrived_at), str(self.id))

    def waiting_minutes(self, now: datetime) -> int:
        """Minutes from arrival until a doctor saw the patient, or until ``now``."""
        until = self.seen_at or now
        return max(0, int((_utc(until) - _utc(self.arrived_at)).total_seconds() // 60))

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> BoardEntry:
        triage = raw.get("triage") or {}
        arrived = _when(raw["arrived_at"])
        assert arrived is not None
        return cls(
            id=raw["_id"],
            department_id=raw["department_id"],
            status=EmergencyStatus(raw["status"]),
            acuity_rank=int(raw.get("acuity_rank", 0)),
            level=triage.get("level"),
            arrival_mode=ArrivalMode(raw["arrival_mode"]),
            arrived_at=arrived,
            triaged_at=_when(triage.get("triaged_at")),
            seen_at=_when(raw.get("seen_at")),
            assigned_doctor_id=raw.get("assigned_doctor_id"),
            version=int(raw.get("version", 0)),
        )

    @classmethod
    def from_hash(cls, id: ObjectId, raw: Mapping[bytes | str, bytes | str]) -> BoardEntry:
        h = {_text(k): _text(v) for k, v in raw.items()}

        def moment(name: str) -> datetime | None:
            return datetime.fromisoformat(h[name]) if h.get(name) else None

        arrived = moment("arrived_at")
        assert arrived is not None
        return cls(
            id=id,
            department_id=ObjectId(h["department_id"]),
            status=EmergencyStatus(h["status"]),
            acuity_rank=int(h["acuity_rank"]),
            level=int(h["level"]) if h.get("level") else None,
            arrival_mode=ArrivalMode(h["arrival_mode"]),
            arrived_at=arrived,
            triaged_at=moment("triaged_at"),
            seen_at=moment("seen_at"),
            assigned_doctor_id=(
                ObjectId(h["assigned_doctor_id"]) if h.get("assigned_doctor_id") else None
            ),
            version=int(h["version"]),
        )

    def to_hash(self) -> dict[str, str]:
        def text(value: Any) -> str:
            if value is None:
                return ""
            return value.isoformat() if isinstance(value, datetime) else str(value)

        return {
            "department_id": str(self.department_id),
            "status": self.status.value,
            "acuity_rank": str(self.acuity_rank),
            "level": text(self.level),
            "arrival_mode": self.arrival_mode.value,
            "arrived_at": self.arrived_at.isoformat(),
            "triaged_at": text(self.triaged_at),
            "seen_at": text(self.seen_at),
            "assigned_doctor_id": text(self.assigned_doctor_id),
            "version": str(self.version),
        }


async def load(query: Mapping[str, Any]) -> list[BoardEntry]:
    """Board entries straight from MongoDB, in board order (one indexed query)."""
    cursor = db.collection(EmergencyVisit).find(dict(query), _PROJECT).sort(_ORDER)
    return [BoardEntry.from_document(raw) for raw in await cursor.to_list(None)]


def _board_query(department_id: ObjectId) -> dict[str, Any]:
    return {"department_id": department_id, "status": {"$in": _OPEN}}


async def from_mongo(department_id: ObjectId) -> list[BoardEntry]:
    return await load(_board_query(department_id))


class LiveBoard:
    def __init__(self, redis: Any, namespace: str, ttl: int = TTL_SECONDS) -> None:
        self._redis = redis
        self._ns = namespace
        self._ttl = ttl

    def item_key(self, id: ObjectId | str) -> str:
        return f"{self._ns}:ed-visit:{id}"

    def board_key(self, department_id: ObjectId | str) -> str:
        return f"{self._ns}:ed-board:{department_id}"

    # -- writing -----------------------------------------------------------------------------

    async def on_event(self, event: DomainEvent) -> None:
        """The bus hook: bring Redis in step with the visit write that produced ``event``."""
        try:
            if event.entity == VISITS:
                found = await load({"_id": ObjectId(event.id)})
                if found:
                    await self.write(found[0])
            elif event.entity == DEPARTMENTS and event.change == "created":
                await self._mark_ready([ObjectId(event.id)])  # a new department: nobody waits
        except Exception:
            log.warning("ED board of %s %s not updated", event.entity, event.id, exc_info=True)

    async def _mark_ready(self, departments: Sequence[ObjectId], *, nx: bool = False) -> None:
        marks = self._redis.pipeline(transaction=False)
        for department in departments:
            marks.zadd(self.board_key(department), {READY: -1}, nx=nx)
            if not nx:
                marks.expire(self.board_key(department), self._ttl)
        await marks.execute()

    async def write(self, entry: BoardEntry) -> None:
        """One visit's hash and membership, unless Redis already holds a newer state."""
        key = self.item_key(entry.id)
        board = self.board_key(entry.department_id)
        for _ in range(MAX_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as tx:
                try:
                    await tx.watch(key)
                    version = await self._redis.hget(key, "version")
                    if version is not None and int(version) > entry.version:
                        return  # Redis already holds a newer state of this visit
                    tx.multi()
                    tx.hset(key, mapping=entry.to_hash())
                    tx.expire(key, self._ttl)
                    if entry.open:
                        tx.zadd(board, {str(entry.id): entry.score})
                        tx.expire(board, self._ttl)
                    else:
                        tx.zrem(board, str(entry.id))
                    await tx.execute()
                    return
                except WatchError:
                    continue  # another writer touched this visit: read again
        raise RuntimeError(f"ED board: gave up writing visit {entry.id}")

    async def refresh(self, department_id: ObjectId) -> list[BoardEntry]:
        """Replace one board with MongoDB's; a write landing meanwhile touches the WATCHed
        key, so the refresh starts again rather than dropping it."""
        board = self.board_key(department_id)
        for _ in range(MAX_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as tx:
                try:
                    await tx.watch(board)
                    entries = await from_mongo(department_id)
                    items = [self.item_key(e.id) for e in entries]
                    versions: list[Any] = []
                    if items:
                        await tx.watch(*items)
                        reads = self._redis.pipeline(transaction=False)
                        for item in items:
                            reads.hget(item, "version")
                        versions = await reads.execute()
                    tx.multi()
                    tx.delete(board)
                    tx.zadd(board, {READY: -1})
                    for entry, item, stored in zip(entries, items, versions, strict=True):
                        tx.zadd(board, {str(entry.id): entry.score})
                        if stored is None or int(stored) <= entry.version:
                            tx.hset(item, mapping=entry.to_hash())
                            tx.expire(item, self._ttl)
                    tx.expire(board, self._ttl)
                    await tx.execute()
                    return entries
                except WatchError:
                    continue
        raise RuntimeError(f"ED board: gave up refreshing department {department_id}")

    async def rebuild(self) -> int:
        """Drop every board and refill the busy ones (at start-up); returns the open visits."""
        stale = [
            k async for k in self._redis.scan_iter(match=f"{self._ns}:ed-board:*", count=10_000)
        ]
        for start in range(0, len(stale), 500):
            await self._redis.delete(*stale[start : start + 500])
        entries = await load({"status": {"$in": _OPEN}})
        busy = sorted({e.department_id for e in entries})
        for department in busy:
            await self.refresh(department)
        # Every other department has an empty board; NX keeps a board written meanwhile.
        idle = [i for i in await db.collection(Department).distinct("_id") if i not in busy]
        for start in range(0, len(idle), 500):
            await self._mark_ready(idle[start : start + 500], nx=True)
        return len(entries)

    # -- reading -----------------------------------------------------------------------------

    async def board(self, department_id: ObjectId) -> list[BoardEntry]:
        """One board in order; from Redis, or from MongoDB if Redis fails."""
        try:
            return await self._board(department_id)
        except Exception:
            log.warning("ED board read failed; answering from MongoDB", exc_info=True)
            return await from_mongo(department_id)

    async def _board(self, department_id: ObjectId) -> list[BoardEntry]:
        raw = await self._redis.zrange(self.board_key(department_id), 0, -1)
        members = [_text(m) for m in raw]
        if READY not in members:
            return await self.refresh(department_id)
        ids = [m for m in members if m != READY]
        reads = self._redis.pipeline(transaction=False)
        for id in ids:
            reads.hgetall(self.item_key(id))
        found: list[BoardEntry] = []
        for id, item in zip(ids, await reads.execute(), strict=True):
            if not item:
                return await self.refresh(department_id)  # a hash expired or was evicted
            found.append(BoardEntry.from_hash(ObjectId(id), item))
        kept = (e for e in found if e.open and e.department_id == department_id)
        return sorted(kept, key=lambda e: e.order)


SLOT: Slot[LiveBoard] = Slot("ED boards", "open visits")


def current() -> LiveBoard | None:
    """The running app's view; ``None`` outside one (then MongoDB answers)."""
    return SLOT.current


async def start(redis: Any, settings: Settings, bus: Bus) -> LiveBoard:
    return await SLOT.start(LiveBoard(redis, namespace(settings)), bus)


async def board(department_id: ObjectId) -> list[BoardEntry]:
    live = current()
    if live is None:
        return await from_mongo(department_id)
    return await live.board(department_id)
