"""MongoDB client and Beanie initialisation: the only module that knows which driver runs.

Production talks to MongoDB through motor; the embedded default and the tests use
mongomock-motor. Moving to Beanie 2 + PyMongo async must stay a change to this file alone,
so every other module reaches a raw collection through ``collection(Model)``. The dependency
points one way: this module binds the documents of ``models`` to the driver, and ``models``
never imports it (documents declare data; they do not talk to the store).
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import mongomock.collection
import mongomock_motor
from beanie import Document, init_beanie
from bson import ObjectId
from mongomock import aggregate as _mongomock_aggregate
from mongomock import filtering as _filtering_module
from mongomock import helpers as _helpers_module
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection, AsyncIOMotorDatabase
from opentelemetry.trace import SpanKind
from pymongo import monitoring

import config
import metrics
from config import Settings
from crypto import fields as sealing
from crypto import keyring
from crypto.keys import KeyProvider, configured_keys, provider_for
from models import DOCUMENT_MODELS
from observability import tracing

log = logging.getLogger(__name__)

_mongomock_filtering: Any = _filtering_module  # untyped library modules
_mongomock_helpers: Any = _helpers_module

# Database commands that are real round trips; bookkeeping like `hello` or `endSessions` is not.
_COUNTED_COMMANDS = frozenset(
    {
        "find", "getMore", "aggregate", "count", "distinct", "insert", "update", "delete",
        "findAndModify",
    }
)  # fmt: skip
_MOCK_METHODS = (
    "find", "find_one", "aggregate", "count_documents", "distinct", "insert_one", "insert_many",
    "update_one", "update_many", "replace_one", "delete_one", "delete_many",
    "find_one_and_update", "find_one_and_replace", "find_one_and_delete", "bulk_write",
)  # fmt: skip


class OperationCounter:
    """Counts database operations at the driver boundary, per (collection, operation).

    Tests use it to prove batching (a page of 100 costs what a page of 10 costs); with a real
    server it counts the wire commands, with the embedded store the collection calls.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.enabled = False

    def record(self, collection: str, operation: str) -> None:
        if self.enabled:
            self.counts[(collection, operation)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @contextmanager
    def measure(self) -> Iterator[OperationCounter]:
        self.counts.clear()
        self.enabled = True
        try:
            yield self
        finally:
            self.enabled = False


operations = OperationCounter()


_MOCK_KINDS = {
    "find": "find", "find_one": "find", "aggregate": "aggregate", "count_documents": "aggregate",
    "distinct": "distinct", "insert_one": "insert", "insert_many": "insert",
    "update_one": "update", "update_many": "update", "replace_one": "update",
    "delete_one": "delete", "delete_many": "delete", "find_one_and_update": "findAndModify",
    "find_one_and_replace": "findAndModify", "find_one_and_delete": "findAndModify",
    "bulk_write": "bulkWrite",
}  # fmt: skip
"""The wire command each embedded-store call stands for, so both stores report one set of kinds."""
MAX_IN_FLIGHT = 10_000


class _CommandListener(monitoring.CommandListener):
    """Counts commands (``operations``, the metrics) and times them (``duration_micros``)."""

    def __init__(self) -> None:
        self.in_flight: dict[tuple[Any, int], tuple[str, str]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in _COUNTED_COMMANDS:
            target = event.command.get(event.command_name)
            collection = target if isinstance(target, str) else event.command.get("collection", "")
            operations.record(str(collection), event.command_name)
            metrics.DB_OPERATIONS.labels(str(collection), event.command_name).inc()
            if len(self.in_flight) >= MAX_IN_FLIGHT:  # replies lost with their connection
                self.in_flight.clear()
            key = (event.connection_id, event.request_id)
            self.in_flight[key] = (str(collection), event.command_name)

    def _ended(
        self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent
    ) -> None:
        found = self.in_flight.pop((event.connection_id, event.request_id), None)
        if found is not None:
            metrics.DB_DURATION.labels(*found).observe(event.duration_micros / 1e6)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._ended(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._ended(event)


async def _timed(pending: Awaitable[Any], collection: str, kind: str) -> Any:
    """An embedded-store call awaited, timed and (while tracing) spanned as pymongo's would be."""
    attributes = {"db.system": "mongodb", "db.collection.name": collection, "db.operation": kind}
    with tracing.span(f"{kind} {collection}", SpanKind.CLIENT, attributes):
        started = time.perf_counter()
        try:
            return await pending
        finally:
            metrics.DB_DURATION.labels(collection, kind).observe(time.perf_counter() - started)


def _count_mock_calls() -> None:
    """Wrap the embedded store's collection methods once, so both stores report operations."""
    cls: Any = mongomock_motor.AsyncMongoMockCollection
    if getattr(cls, "_shms_counted", False):
        return
    for name in _MOCK_METHODS:
        original = getattr(cls, name)

        def make(op: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(fn)
            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                operations.record(self.name, op)
                kind = _MOCK_KINDS[op]
                metrics.DB_OPERATIONS.labels(self.name, kind).inc()
                result = fn(self, *args, **kwargs)
                # A cursor runs when iterated: counted, not timed.
                return _timed(result, self.name, kind) if inspect.isawaitable(result) else result

            return wrapper

        setattr(cls, name, make(name, original))
    cls._shms_counted = True


def _sorted_matches(collection: Any, spec: Any, sort: Any) -> list[Any]:
    """The stored documents matching ``spec`` in ``sort`` order, not yet copied (mongomock's
    own ordering, minus its copy of every document before the window is cut)."""
    dataset: Any = collection._iter_documents(spec)
    if sort:
        items = sort.items() if isinstance(sort, dict) else sort
        for key, direction in reversed(list(items)):
            if key == "$natural":
                if direction < 0:
                    dataset = reversed(list(dataset))
                continue
            if key.startswith("$"):
                raise NotImplementedError(f"Sorting by {key} is not implemented")
            dataset = _sorted_by(list(dataset), key, direction < 0)
    return list(dataset)


_PLAIN_KEYS = (datetime, ObjectId, str, int, float)


def _sorted_by(docs: list[Any], key: str, reverse: bool) -> list[Any]:
    """Sort by one field: by the values themselves when they are all present and of one plain
    type (BSON orders those as Python does), else by mongomock's BSON comparison."""
    values = [doc.get(key) for doc in docs] if "." not in key else None
    if values:
        kind = type(values[0])
        if kind in _PLAIN_KEYS and all(type(v) is kind for v in values):
            try:
                order = sorted(range(len(docs)), key=values.__getitem__, reverse=reverse)
            except TypeError:  # naive and aware datetimes, say: let mongomock decide
                pass
            else:
                return [docs[i] for i in order]
    return sorted(
        docs,
        key=lambda doc: _mongomock_filtering.resolve_sort_key(key, doc),
        reverse=reverse,
    )


def _aware_copy(value: Any) -> Any:
    """A stored document copied as mongomock copies it for a tz-aware client (containers new,
    datetimes in UTC), in one pass instead of its two generic ones."""
    kind = type(value)
    if kind is dict:
        return {k: _aware_copy(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_aware_copy(v) for v in value]
    if kind is datetime:
        return value.replace(tzinfo=_mongomock_helpers.utc)
    if isinstance(value, dict | list):  # subclasses: mongomock's own, general, copy
        return _mongomock_helpers.make_datetime_timezone_aware_in_document(copy.deepcopy(value))
    return value


def _window(self: Any) -> list[Any]:
    """The cursor's page: matched and sorted in place, then only ``skip``/``limit`` copied."""
    factory = self._factory
    key = (factory, self._skip, self._limit)
    cached = getattr(self, "_shms_window", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    collection = self.collection
    spec, sort, fields, as_class = factory.args[-4:]
    rows = _sorted_matches(collection, spec, sort)[self._skip :]
    if self._limit:
        rows = rows[: abs(self._limit)]
    if fields is None and as_class is dict and collection.codec_options.tz_aware:
        docs = [_aware_copy(doc) for doc in rows]  # the common case, in one pass
    else:
        docs = [collection._copy_only_fields(doc, fields, as_class) for doc in rows]
        if collection.codec_options.tz_aware:
            docs = [_mongomock_helpers.make_datetime_timezone_aware_in_document(d) for d in docs]
    self._shms_window = (key, docs)
    return docs


def _next_windowed(self: Any) -> Any:
    """``Cursor.__next__`` over the cursor's window, computed once per cursor."""
    try:
        doc = _window(self)[self._emitted]
    except IndexError:
        raise StopIteration from None
    self._emitted += 1
    return doc


def _aggregate_matching_first(self: Any, pipeline: Any, session: Any = None, **kwargs: Any) -> Any:
    """``Collection.aggregate`` that lets a leading ``$match`` select the input, as MongoDB
    does with an index, instead of copying the whole collection into the pipeline first."""
    stages = list(pipeline)
    spec: dict[str, Any] = {}
    if stages and isinstance(stages[0], dict) and list(stages[0]) == ["$match"]:
        spec, stages = stages[0]["$match"], stages[1:]
    documents = list(self.find(spec))
    process: Any = _mongomock_aggregate.process_pipeline  # untyped library function
    return process(documents, self.database, stages, session)


def _speed_up_mock() -> None:
    """Fixes of the embedded store's cost, same answers: mongomock's cursor copies every
    matching document before cutting the page (a page of 10 cost what a page of 1,000 did) and
    re-slices its whole result list on every ``next`` (O(n²): 100,000 documents took ~26 s to
    iterate); its ``aggregate`` copies the whole collection before the first stage runs."""
    cursor: Any = mongomock.collection.Cursor
    if getattr(cursor, "_shms_fast", False):
        return
    cursor.__next__ = cursor.next = _next_windowed
    cursor._shms_fast = True
    collection: Any = mongomock.collection.Collection
    collection.aggregate = _aggregate_matching_first


def create_client(mongodb_url: str, connect_timeout: float = 5.0) -> Any:
    """A motor client for ``mongodb_url``, or the in-process store when it is empty.

    ``connect_timeout`` (SHMS_CONNECT_TIMEOUT_SECONDS) bounds connecting and finding a server,
    so an unreachable MongoDB fails an operation within it instead of pymongo's 30 s.
    """
    if not mongodb_url:
        _count_mock_calls()
        _speed_up_mock()
        return mongomock_motor.AsyncMongoMockClient(tz_aware=True)
    timeout_ms = int(connect_timeout * 1000)
    return AsyncIOMotorClient(
        mongodb_url,
        tz_aware=True,
        uuidRepresentation="standard",
        event_listeners=[_CommandListener()],
        connectTimeoutMS=timeout_ms,
        serverSelectionTimeoutMS=timeout_ms,
    )


EMBEDDED_KEEP = 20_000
"""Documents an append-only collection keeps on the embedded store (the audit trail): it lives
in the server's memory and ends with it, so under load it would otherwise only grow."""

_trim_logged: set[str] = set()


def keep_newest(coll: Any, keep: int | None = None) -> int:
    """On the embedded store, drop the oldest documents of ``coll`` past ``keep`` (10% of slack,
    so this runs once per ``keep // 10`` inserts); on MongoDB, nothing. Returns how many went.

    The store's insertion order is its age; the documents are popped from its own table,
    which holds no other index (mongomock checks unique indexes by scanning)."""
    if not isinstance(coll, mongomock_motor.AsyncMongoMockCollection):
        return 0
    keep = EMBEDDED_KEEP if keep is None else keep
    store = getattr(coll, "_store", None)
    documents = getattr(store, "_documents", None)
    if not isinstance(documents, OrderedDict) or len(documents) <= keep + keep // 10:
        return 0
    excess = len(documents) - keep
    with store._rwlock.writer():  # type: ignore[union-attr]
        for _ in range(excess):
            documents.popitem(last=False)
    name = str(getattr(coll, "name", "?"))
    if name not in _trim_logged:
        _trim_logged.add(name)
        log.warning(
            "embedded store: keeping the newest %d %s only (it lives in memory); use MongoDB "
            "(MONGODB_URL) for a trail that is kept",
            keep,
            name,
        )
    return excess


def _head(path: str) -> str:
    return path.split(".", 1)[0]


def _document_id(spec: Any) -> Any:
    found = spec.get("_id") if isinstance(spec, dict) else None
    if found is None or isinstance(found, dict):
        raise ValueError("sealed fields are written one document at a time, chosen by its _id")
    return found


def _touched(names: Any) -> set[str]:
    return {_head(str(k)) for k in names}


def _seal_update(spec: sealing.Sealing, filter: Any, update: Any) -> Any:
    """An update whose sealed fields are encrypted and whose blind indexes follow them.

    A sealed field is written whole by ``$set`` (never a part of it, never by ``$push`` and
    the like); unsetting a blind index's source unsets the index."""
    if isinstance(update, list):  # a pipeline: allowed when it leaves sealed fields alone
        for stage in update:
            for body in stage.values():
                if isinstance(body, dict) and _touched(body) & spec.written:
                    raise ValueError("an update pipeline cannot write sealed fields")
        return update
    out = {op: _seal_elements(spec, op, body) for op, body in update.items()}
    for operator, body in out.items():
        touched = _touched(body) & spec.written
        if not touched:
            continue
        if operator == "$unset":
            extra = {t: "" for t, (s, _) in spec.derived.items() if s in touched}
            out[operator] = {**body, **extra}
            continue
        parts = [k for k in body if _head(str(k)) in spec.written and "." in str(k)]
        if operator not in ("$set", "$setOnInsert") or parts:
            raise ValueError(f"sealed fields {sorted(touched)} are written whole, by $set")
        written = sealing.seal_fields(spec, _document_id(filter), body)
        nulls = [t for t in spec.derived if t in written and written[t] is None]
        out[operator] = {k: v for k, v in written.items() if k not in nulls}
        if nulls:
            out["$unset"] = {**out.get("$unset", {}), **{k: "" for k in nulls}}
    return out


def _seal_elements(spec: sealing.Sealing, operator: str, body: Any) -> Any:
    """``body`` with the elements it writes to sealed arrays sealed: a whole array (``$set``),
    one element (``$set`` of ``charges.$``, ``$push``, ``$addToSet``, with or without
    ``$each``); writing a sealed field of an element by path is refused."""
    if not spec.items or not isinstance(body, dict):
        return body
    out = dict(body)
    for key, value in body.items():
        parts = str(key).split(".")
        if parts[0] not in spec.items:
            continue
        array = parts[0]
        if len(parts) > 2 and parts[-1] in spec.items[array][1]:
            raise ValueError(f"{spec.collection}.{key} is sealed: write the element whole")
        if operator in ("$push", "$addToSet") and len(parts) == 1:
            if isinstance(value, dict) and "$each" in value:
                each = [sealing.seal_element(spec, array, e) for e in value["$each"]]
                out[key] = {**value, "$each": each}
            else:
                out[key] = sealing.seal_element(spec, array, value)
        elif operator in ("$set", "$setOnInsert") and len(parts) == 1 and isinstance(value, list):
            out[key] = [sealing.seal_element(spec, array, e) for e in value]
        elif operator in ("$set", "$setOnInsert") and len(parts) == 2:
            out[key] = sealing.seal_element(spec, array, value)
    return out


class SealedCollection:
    """The driver collection of a model with sealed fields: every write is sealed on its way
    (inserts, replacements, updates), every other call is the driver's own. Reads return what
    is stored; documents are opened when they are built (``models.trusted``, validation)."""

    def __init__(self, raw: Any, spec: sealing.Sealing) -> None:
        self.raw, self.spec = raw, spec

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def insert_one(self, document: Any, *args: Any, **kwargs: Any) -> Any:
        return self.raw.insert_one(sealing.seal_document(self.spec, document), *args, **kwargs)

    def insert_many(self, documents: Any, *args: Any, **kwargs: Any) -> Any:
        sealed = [sealing.seal_document(self.spec, d) for d in documents]
        return self.raw.insert_many(sealed, *args, **kwargs)

    def _replacement(self, filter: Any, document: Any) -> dict[str, Any]:
        if "_id" not in document:
            document = {"_id": _document_id(filter), **document}
        return sealing.seal_document(self.spec, document)

    def replace_one(self, filter: Any, document: Any, *args: Any, **kwargs: Any) -> Any:
        return self.raw.replace_one(filter, self._replacement(filter, document), *args, **kwargs)

    def find_one_and_replace(self, filter: Any, document: Any, *args: Any, **kwargs: Any) -> Any:
        replacement = self._replacement(filter, document)
        return self.raw.find_one_and_replace(filter, replacement, *args, **kwargs)

    def update_one(self, filter: Any, update: Any, *args: Any, **kwargs: Any) -> Any:
        return self.raw.update_one(filter, _seal_update(self.spec, filter, update), *args, **kwargs)

    def find_one_and_update(self, filter: Any, update: Any, *args: Any, **kwargs: Any) -> Any:
        sealed = _seal_update(self.spec, filter, update)
        return self.raw.find_one_and_update(filter, sealed, *args, **kwargs)

    def update_many(self, filter: Any, update: Any, *args: Any, **kwargs: Any) -> Any:
        return self.raw.update_many(
            filter, _seal_update(self.spec, filter, update), *args, **kwargs
        )

    def bulk_write(self, requests: Any, *args: Any, **kwargs: Any) -> Any:
        if any(type(r).__name__ not in ("DeleteOne", "DeleteMany") for r in requests):
            raise ValueError(f"{self.spec.collection} has sealed fields: no bulk writes")
        return self.raw.bulk_write(requests, *args, **kwargs)


def key_store(database: Any) -> Any:
    """The ``data_keys`` collection (``crypto.keyring``), for opening and rotating keys."""
    return database[keyring.COLLECTION]


_providers: dict[tuple[str, str, str], KeyProvider] = {}


def key_provider(settings: Settings | None = None) -> KeyProvider:
    """The master keys of ``settings`` (default: the environment's), built once per process."""
    settings = settings or config.get_settings()
    key = (
        settings.shms_env,
        settings.shms_master_key.get_secret_value(),
        str(settings.shms_state_dir),
    )
    found = _providers.get(key)
    if found is None:
        found = _providers[key] = provider_for(settings)
    return found


async def init_database(
    client: Any, name: str, settings: Settings | None = None
) -> AsyncIOMotorDatabase[Any]:
    """Bind every Beanie document to ``client[name]``, create the declared indexes, load the
    data keys (``crypto.keyring``) and seal the collections of models with sealed fields."""
    database: AsyncIOMotorDatabase[Any] = client[name]
    await init_beanie(database=database, document_models=list(DOCUMENT_MODELS))
    sealed = [(m, sealing.SEALED[m]) for m in DOCUMENT_MODELS if m in sealing.SEALED]
    embedded = isinstance(client, mongomock_motor.AsyncMongoMockClient)
    await keyring.open_keys(
        key_store(database),
        key_provider(settings),
        [*(spec.collection for _, spec in sealed), *keyring.CACHED_ONLY],
        embedded_seed=configured_keys(settings or config.get_settings())[0] if embedded else None,
    )
    for model, spec in sealed:
        beanie_settings = model.get_settings()
        sealed_collection: Any = SealedCollection(beanie_settings.motor_collection, spec)
        beanie_settings.motor_collection = sealed_collection
    return database


def collection(model: type[Document]) -> AsyncIOMotorCollection[dict[str, Any]]:
    """The driver collection behind ``model``, for the atomic updates, aggregations and raw
    reads Beanie's query API cannot express; asked for here so only this module names the
    driver (``Model.get_motor_collection()`` is Beanie 1.x only)."""
    found: AsyncIOMotorCollection[dict[str, Any]] = model.get_motor_collection()
    return found


async def ping(client: Any) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:  # health checks report, they do not raise
        log.warning("MongoDB ping failed", exc_info=True)
        return False
    return True


def close_client(client: Any) -> None:
    client.close()
