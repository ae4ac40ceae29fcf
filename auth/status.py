"""Whether the caller of a token may still act: their account, service client and staff record
as they stand now, not as they stood when the token was signed.

A signed token stays valid until ``exp``; deactivating a doctor or disabling an account must
not wait that long. So every request (HTTP, and a WebSocket at ``connection_init``) looks up
the records its token names and is refused with ``UNAUTHENTICATED`` / ``account_disabled`` if
one of them is inactive; a long-lived caller (a subscription) is looked up again when an event
is delivered (``recheck``, at most every ``RECHECK_SECONDS``).

Which records a token names:
- ``sub`` an account id (the password and refresh grants): that ``Account`` (active, roles);
- ``sub`` ``client:<id>`` with ``client_id`` (the client-credentials grant): that
  ``ServiceClient``;
- with an external IdP, the ``Account`` whose ``idp_subject`` is ``sub``;
- ``sid``: that staff record, in the collections of the token's staff roles.
A record that does not exist constrains nothing (``shms token`` and the tests sign subjects
with no account); records are disabled, never deleted. Roles an account or client no longer
holds are dropped from the token's.

The cache. One Redis key per record, ``{namespace}:auth:{kind}:{id}`` (the document cache's
namespace, see ``cache.keys``; IdP subjects hashed), holding a small JSON summary (active, roles,
links; ``{}`` for no such record) for ``SHMS_AUTH_STATUS_TTL_SECONDS``. A request reads all of
its keys in one MGET and touches MongoDB only for misses, with one ``$in`` per collection.
Every write of an account, service client or staff record ends in ``services.changes.changed``,
which calls ``forget``: the keys are overwritten with a tombstone for ``TOMBSTONE_SECONDS``,
during which readers go to MongoDB and may not backfill. A reader that loaded MongoDB before a
write and fills the cache after it would otherwise put the old state back; its fill is
``SET NX`` (the tombstone refuses it), and a reader slower than half the tombstone's life does
not fill at all.

Failing safe. When Redis does not answer (or failed less than ``SHMS_CACHE_BREAKER_SECONDS``
ago) the records are read from MongoDB: never assumed active. A tombstone Redis refused is
retried before this process reads Redis again; other processes sharing the Redis may serve the
old summary until its TTL, the bound on staleness during an outage.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bson import ObjectId
from bson.errors import InvalidId

import db
import metrics
from auth.principal import Principal
from auth.roles import Role
from cache import keys
from cache.documents import Breaker
from config import Settings
from errors import Unauthenticated
from models.accounts import Account, ServiceClient
from models.base import Entity
from models.staff import AdminStaff, Doctor, Nurse, StaffMember

log = logging.getLogger(__name__)

T = TypeVar("T")

RECHECK_SECONDS = 1.0
"""How stale a long-lived caller's standing may be before ``recheck`` looks again."""
TOMBSTONE_SECONDS = 5
"""How long a write keeps readers off the cache (and their backfills out of it)."""
TOMBSTONE = b"-"
MAX_PENDING = 10_000

STAFF_MODELS: dict[Role, type[StaffMember]] = {
    Role.DOCTOR: Doctor,
    Role.RADIOLOGIST: Doctor,  # a radiologist's account is a doctor's (of Radiology)
    Role.NURSE: Nurse,
    Role.ADMIN_STAFF: AdminStaff,
    Role.BILLING: AdminStaff,
}
"""Which collection a staff role's ``sid`` points into. Every role whose accounts act as a staff
record must be here: a token's staff record is looked up only in its roles' collections (all of
them when it holds none), so a missing role hides a deactivated record behind another role's."""


def collection_of(model: type[StaffMember]) -> str:
    """A staff model's collection, known before Beanie is initialised."""
    return str(model.Settings.name)


_STAFF_BY_COLLECTION = {collection_of(m): m for m in STAFF_MODELS.values()}
_ACCOUNT_FIELDS = {"active": 1, "roles": 1, "patient_id": 1, "staff_id": 1, "department_id": 1}
_STAFF_FIELDS = {"active": 1, "department_id": 1, "ward_id": 1}


def disabled() -> Unauthenticated:
    return Unauthenticated("This account is disabled", reason="account_disabled")


def object_id(value: Any) -> ObjectId | None:
    """A record id claim; a malformed one makes the whole token invalid."""
    if value in (None, ""):
        return None
    try:
        return ObjectId(str(value))
    except (InvalidId, TypeError):
        raise Unauthenticated("Invalid token", reason="bad_claims") from None


def roles_of(claims: Mapping[str, Any], settings: Settings) -> frozenset[Role]:
    """The SHMS roles a token claims (``roles``, or the IdP's role claim); unknown ones dropped."""
    raw = claims.get("roles", claims.get(settings.shms_oidc_role_claim, []))
    if isinstance(raw, str):
        raw = raw.split()
    known = {r.value for r in Role}
    return frozenset(Role(r) for r in raw if isinstance(r, str) and r in known)


@dataclass(frozen=True)
class Ref:
    """One record a token names: ``kind`` is account, idp, client or a staff collection;
    ``ident`` its id, IdP subject or client id."""

    kind: str
    ident: str


@dataclass(frozen=True)
class Record:
    """What the cache keeps of a record: enough to decide, nothing personal."""

    active: bool
    roles: frozenset[Role] = frozenset()
    patient_id: ObjectId | None = None
    staff_id: ObjectId | None = None
    department_id: ObjectId | None = None
    ward_id: ObjectId | None = None

    def encode(self) -> str:
        links = {
            "p": self.patient_id,
            "s": self.staff_id,
            "d": self.department_id,
            "w": self.ward_id,
        }
        body: dict[str, Any] = {"a": self.active, "r": sorted(r.value for r in self.roles)}
        body.update({k: str(v) for k, v in links.items() if v is not None})
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, value: bytes | str) -> Record | None:
        body = json.loads(value)
        if not body:
            return None  # cached: no such record
        return cls(
            active=bool(body["a"]),
            roles=frozenset(Role(r) for r in body.get("r", ())),
            patient_id=ObjectId(body["p"]) if "p" in body else None,
            staff_id=ObjectId(body["s"]) if "s" in body else None,
            department_id=ObjectId(body["d"]) if "d" in body else None,
            ward_id=ObjectId(body["w"]) if "w" in body else None,
        )

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Record:
        known = {r.value for r in Role}
        return cls(
            active=bool(raw.get("active", True)),
            roles=frozenset(Role(r) for r in raw.get("roles", ()) if r in known),
            patient_id=raw.get("patient_id"),
            staff_id=raw.get("staff_id"),
            department_id=raw.get("department_id"),
            ward_id=raw.get("ward_id"),
        )


MISSING = "{}"
"""The cached value of a record that does not exist."""


def _idp_ident(subject: str) -> str:
    return hashlib.sha256(subject.encode("utf-8")).hexdigest()[:32]


async def _read_mongo(refs: Sequence[Ref]) -> dict[Ref, Record | None]:
    """The records of ``refs`` from MongoDB: one ``$in`` query per collection."""
    found: dict[Ref, Record | None] = dict.fromkeys(refs)
    by_kind: dict[str, list[Ref]] = {}
    for ref in refs:
        by_kind.setdefault(ref.kind, []).append(ref)
    for kind, wanted in by_kind.items():
        if kind == "idp":
            subjects = {ref.ident: ref for ref in wanted}
            query: dict[str, Any] = {"idp_subject": {"$in": list(subjects)}}
            rows = db.collection(Account).find(query, {**_ACCOUNT_FIELDS, "idp_subject": 1})
            async for raw in rows:
                found[subjects[raw["idp_subject"]]] = Record.of(raw)
        elif kind == "client":
            clients = {ref.ident: ref for ref in wanted}
            query = {"client_id": {"$in": list(clients)}}
            rows = db.collection(ServiceClient).find(
                query, {"active": 1, "roles": 1, "client_id": 1}
            )
            async for raw in rows:
                found[clients[raw["client_id"]]] = Record.of(raw)
        else:
            model = Account if kind == "account" else _STAFF_BY_COLLECTION[kind]
            ids = {ObjectId(ref.ident): ref for ref in wanted}
            fields = _ACCOUNT_FIELDS if kind == "account" else _STAFF_FIELDS
            rows = db.collection(model).find({"_id": {"$in": list(ids)}}, fields)
            async for raw in rows:
                found[ids[raw["_id"]]] = Record.of(raw)
    return found


class StatusCache:
    """The standing of token subjects, cached in ``redis`` (``None``: MongoDB alone).

    One per app, installed by its lifespan; ``clock`` is monotonic and drives the breaker.
    """

    def __init__(
        self,
        redis: Any = None,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis: Any = redis if settings is not None else None
        self.settings = settings
        self.namespace = keys.namespace(settings) if settings is not None else ""
        self.ttl = settings.shms_auth_status_ttl_seconds if settings is not None else 0
        self.timeout = settings.shms_cache_timeout_seconds if settings is not None else 0.5
        breaker = settings.shms_cache_breaker_seconds if settings is not None else 0.0
        self.clock = clock
        self.breaker = Breaker(breaker, lambda: self.clock())
        self.pending: set[str] = set()  # tombstones Redis refused, retried before the next read
        self.round_trips = 0
        self.mongo_reads = 0

    def key(self, ref: Ref) -> str:
        ident = _idp_ident(ref.ident) if ref.kind == "idp" else ref.ident  # no names in Redis
        return f"{self.namespace}:auth:{ref.kind}:{ident}"

    # -- deciding ------------------------------------------------------------------------------

    async def vet(self, claims: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
        """``claims`` as the records they name stand now; ``account_disabled`` if one is not
        active. With an external IdP the account supplies roles and links (authoritative over
        the token); otherwise roles the account or client lost are dropped, and a staff
        member's missing ``did`` is read from their record."""
        out = dict(claims)
        roles = roles_of(out, settings)
        subject = str(out["sub"])
        owner_ref = self._owner(subject, out, settings)
        staff_id = object_id(out.get("sid"))
        staff_refs = self._staff_refs(roles, staff_id)
        records = await self.lookup([*([owner_ref] if owner_ref else []), *staff_refs])
        owner = records.get(owner_ref) if owner_ref is not None else None
        if owner is not None:
            if not owner.active:
                raise disabled()
            if owner_ref is not None and owner_ref.kind == "idp":
                roles = owner.roles
                out["roles"] = sorted(r.value for r in roles)
                for claim, value in (
                    ("pid", owner.patient_id),
                    ("sid", owner.staff_id),
                    ("did", owner.department_id),
                ):
                    out[claim] = str(value) if value is not None else None
                staff_refs = self._staff_refs(roles, owner.staff_id)  # the account's own link
                records.update(await self.lookup([r for r in staff_refs if r not in records]))
            else:
                held = roles & owner.roles
                if roles and not held:
                    raise Unauthenticated(
                        "The account no longer holds the roles of this token",
                        reason="roles_revoked",
                    )
                out["roles"] = sorted(r.value for r in held)
        staff = [record for ref in staff_refs if (record := records.get(ref)) is not None]
        if any(not record.active for record in staff):
            raise disabled()
        if not out.get("did"):
            departments = [r.department_id for r in staff if r.department_id is not None]
            if departments:
                out["did"] = str(departments[0])
        # A nurse's ward team is where they work now: never what a token says.
        wards = [r.ward_id for r in staff if r.ward_id is not None]
        out["wid"] = str(wards[0]) if wards and Role.NURSE in roles else None
        return out

    async def recheck(self, principal: Principal) -> None:
        """Refuse a caller whose records changed since they were last checked (at most every
        ``RECHECK_SECONDS``): a subscription outlives the request that opened it."""
        if self.settings is None:
            return  # no app is running, so no long-lived caller either
        if self.clock() - principal.standing.checked_at < RECHECK_SECONDS:
            return
        claims: dict[str, Any] = {
            "sub": principal.subject,
            "roles": [r.value for r in principal.roles],
        }
        for claim, value in (
            ("sid", principal.staff_id),
            ("did", principal.department_id),
            ("client_id", principal.client_id),
        ):
            if value is not None:
                claims[claim] = str(value)
        vetted = await self.vet(claims, self.settings)
        if roles_of(vetted, self.settings) != principal.roles:
            raise Unauthenticated(
                "The roles of this account changed; sign in again", reason="roles_revoked"
            )
        if object_id(vetted.get("wid")) != principal.ward_id:
            raise Unauthenticated(
                "This nurse's ward changed; subscribe again", reason="ward_changed"
            )
        principal.standing.checked_at = self.clock()

    @staticmethod
    def _owner(subject: str, claims: Mapping[str, Any], settings: Settings) -> Ref | None:
        if settings.shms_oidc_jwks_url:
            return Ref("idp", subject) if subject else None
        if len(subject) == 24 and ObjectId.is_valid(subject):
            return Ref("account", subject)
        client = claims.get("client_id")
        if client and subject == f"client:{client}":
            return Ref("client", str(client))
        return None

    @staticmethod
    def _staff_refs(roles: Iterable[Role], staff_id: ObjectId | None) -> list[Ref]:
        """Where ``staff_id`` may live: the collections of the staff roles held (all of them
        when none is), in role order, so the first found decides the department."""
        if staff_id is None:
            return []
        held = [STAFF_MODELS[r] for r in sorted(set(roles) & STAFF_MODELS.keys())]
        models = dict.fromkeys(held or STAFF_MODELS.values())
        return [Ref(collection_of(m), str(staff_id)) for m in models]

    # -- the cache -----------------------------------------------------------------------------

    async def lookup(self, refs: Sequence[Ref]) -> dict[Ref, Record | None]:
        """The records of ``refs`` (``None``: no such record): one Redis round trip, MongoDB
        for what Redis lacks, then one backfill of the plain misses."""
        refs = list(dict.fromkeys(refs))
        if not refs:
            return {}
        started = self.clock()
        values = await self._mget([self.key(ref) for ref in refs])
        found: dict[Ref, Record | None] = {}
        fillable: list[Ref] = []
        for ref, value in zip(refs, values or [None] * len(refs), strict=True):
            if value is None:
                if values is not None:
                    fillable.append(ref)
                continue
            if value in (TOMBSTONE, TOMBSTONE.decode()):
                continue  # written a moment ago: MongoDB decides, and nobody backfills yet
            try:
                found[ref] = Record.decode(value)
            except (ValueError, KeyError, TypeError):
                continue  # unreadable (an older format, say): MongoDB decides until it expires
        misses = [ref for ref in refs if ref not in found]
        metrics.STATUS_CACHE.labels("hit").inc(len(refs) - len(misses))
        metrics.STATUS_CACHE.labels("miss" if values is not None else "bypass").inc(len(misses))
        if misses:
            self.mongo_reads += 1
            found.update(await _read_mongo(misses))
        if fillable and self.clock() - started < TOMBSTONE_SECONDS / 2:
            await self._fill({ref: found[ref] for ref in fillable})
        return found

    async def forget(self, doc: Entity) -> None:
        """After a write of ``doc``: tombstone what is cached about it, if it is an account,
        service client or staff record. Never raises (the write has happened)."""
        names = [self.key(ref) for ref in refs_of(doc)]
        if not names or self.redis is None:
            return
        try:
            await self._call(lambda: self._tombstone(names))
        except Exception as exc:
            self._remember(names)
            log.error(
                "could not drop the cached sign-in status of a %s (%s); retrying later, other "
                "processes may use it for up to %ss",
                doc.get_collection_name(),
                type(exc).__name__,
                self.ttl,
            )

    async def _tombstone(self, names: Iterable[str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.set(name, TOMBSTONE, ex=TOMBSTONE_SECONDS)
            await pipe.execute()

    async def _mget(self, names: list[str]) -> list[Any] | None:
        """The values of ``names``; ``None`` when Redis is skipped or fails (read MongoDB)."""
        if self.redis is None or not self.breaker.allows():
            return None
        pending = list(self.pending)

        async def call() -> list[Any]:
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in pending:
                    pipe.set(name, TOMBSTONE, ex=TOMBSTONE_SECONDS)
                pipe.mget(names)
                replies: list[Any] = await pipe.execute()
            values: list[Any] = replies[-1]
            return values

        try:
            values = await self._call(call)
        except Exception as exc:
            self.breaker.trip()
            log.warning(
                "sign-in status cache unavailable (%s); reading MongoDB for %ss",
                type(exc).__name__,
                self.breaker.seconds,
            )
            return None
        self.pending.difference_update(pending)
        self.breaker.reset()
        return values

    async def _fill(self, records: Mapping[Ref, Record | None]) -> None:
        async def call() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                for ref, record in records.items():
                    value = MISSING if record is None else record.encode()
                    pipe.set(self.key(ref), value, ex=self.ttl, nx=True)
                await pipe.execute()

        try:
            await self._call(call)
        except Exception as exc:  # the answer stands; the next request reads MongoDB again
            self.breaker.trip()
            log.warning("could not cache a sign-in status (%s)", type(exc).__name__)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        self.round_trips += 1
        async with asyncio.timeout(self.timeout):
            return await call()

    def _remember(self, names: Iterable[str]) -> None:
        for name in names:
            if len(self.pending) >= MAX_PENDING:
                log.error("too many sign-in status invalidations missed Redis; the rest expire")
                return
            self.pending.add(name)


def refs_of(doc: Entity) -> list[Ref]:
    """The cache entries a write of ``doc`` makes stale."""
    if doc.id is None:
        return []
    if isinstance(doc, Account):
        refs = [Ref("account", str(doc.id))]
        if doc.idp_subject:
            refs.append(Ref("idp", doc.idp_subject))
        return refs
    if isinstance(doc, ServiceClient):
        return [Ref("client", doc.client_id)]
    if isinstance(doc, StaffMember):
        return [Ref(collection_of(type(doc)), str(doc.id))]
    return []


_current: StatusCache = StatusCache()


def install(cache: StatusCache | None) -> None:
    """Called by the app's lifespan; ``None`` (outside an app) reads MongoDB every time."""
    global _current
    _current = cache or StatusCache()


def current() -> StatusCache:
    return _current
