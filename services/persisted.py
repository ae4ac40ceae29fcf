"""Persisted operations (Apollo's automatic persisted queries) and the allow-list mode.

A front end sends ``extensions.persistedQuery = {"version": 1, "sha256Hash": H}``:

* without ``query``: the document stored under H runs; unknown H answers
  ``PersistedQueryNotFound`` (``PERSISTED_QUERY_NOT_FOUND``) and the client retries with the text;
* with ``query``: H must be the sha256 (lowercase hex) of the text, else ``BAD_USER_INPUT`` and
  nothing is stored; a document that parses is then stored under H (idempotent) and runs.

Any other ``version`` answers ``PersistedQueryNotSupported`` (``PERSISTED_QUERY_NOT_SUPPORTED``),
which makes Apollo clients fall back to sending the text.

Rows are content-addressed (the id is the hash of the text), so they never change: an
in-process LRU of hash -> text sits in front of MongoDB and can never be stale.

Allow-list mode (``SHMS_ALLOWLIST_ROLES``, see ``Settings.allowlisted``): a restricted caller may
run only documents already persisted (by hash, or as text whose hash is stored) and queries whose
every root field is a saved-query field; anything else is ``OPERATION_NOT_ALLOWED``, and such a
caller never stores a document. With ``*``, anonymous callers are restricted too (they hold no
admin role). Only authenticated callers store documents: anonymous text + hash runs unstored,
so no unauthenticated client can fill the collection. ``shms persist`` registers documents at
deploy time. ``app.py`` applies ``resolve`` to every HTTP request and every WebSocket operation.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)
from pymongo.errors import DuplicateKeyError

from config import Settings
from errors import BadUserInput, ShmsError
from models.persisted import PersistedOperation

log = logging.getLogger(__name__)

SUPPORTED_VERSION = 1
CACHE_SIZE = 2048
"""Documents the in-process LRU keeps (a front end persists a few hundred at most)."""

SAVED_QUERY_FIELDS = frozenset({"runSavedQuery", "savedQuery", "savedQueries"})
"""Root query fields an allow-listed caller may use in a document of its own."""

_HASH = re.compile(r"[0-9a-f]{64}")
_HASH_FIELD = "extensions.persistedQuery.sha256Hash"


class PersistedQueryNotFound(ShmsError):
    """The message is the one Apollo clients match on before retrying with the text."""

    code = "PERSISTED_QUERY_NOT_FOUND"

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class PersistedQueryNotSupported(ShmsError):
    code = "PERSISTED_QUERY_NOT_SUPPORTED"

    def __init__(self, reason: str) -> None:
        super().__init__("PersistedQueryNotSupported", reason=reason)


class OperationNotAllowed(ShmsError):
    code = "OPERATION_NOT_ALLOWED"


class _Recent:
    """A bounded LRU of hash -> document text; safe forever because rows never change."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()

    def get(self, sha: str) -> str | None:
        text = self._items.get(sha)
        if text is not None:
            self._items.move_to_end(sha)
        return text

    def put(self, sha: str, text: str) -> None:
        self._items[sha] = text
        self._items.move_to_end(sha)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


recent = _Recent(CACHE_SIZE)


def digest(text: str) -> str:
    """The persisted-query hash of a document: sha256 of its UTF-8 text, lowercase hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def lookup(sha: str) -> str | None:
    """The document stored under ``sha``: from the LRU, else one read by id from MongoDB."""
    text = recent.get(sha)
    if text is not None:
        return text
    row = await PersistedOperation.get(sha)
    if row is None:
        return None
    if digest(row.document) != sha:  # a hand-edited row: never run text under a false hash
        log.warning("persisted operation %s does not match its hash; ignored", sha)
        return None
    recent.put(sha, row.document)
    return row.document


def parse_document(text: str, max_tokens: int | None = None) -> DocumentNode:
    """Parse ``text`` or raise ``BAD_USER_INPUT`` (only documents that parse are stored)."""
    try:
        return parse(text, max_tokens=max_tokens)
    except GraphQLError as error:
        raise BadUserInput(
            f"The document does not parse: {error.message}", fields={"query": error.message}
        ) from None


async def register(text: str, registered_by: str | None, max_tokens: int | None = None) -> str:
    """Store ``text`` under its hash (idempotent: a second registration changes nothing)."""
    parse_document(text, max_tokens)
    sha = digest(text)
    if recent.get(sha) is None:
        # Registered before (or concurrently): the same text, by construction.
        with contextlib.suppress(DuplicateKeyError):
            await PersistedOperation(id=sha, document=text, registered_by=registered_by).insert()
        recent.put(sha, text)
    return sha


def _requested_hash(extensions: Mapping[str, Any] | None) -> str | None:
    raw = (extensions or {}).get("persistedQuery")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise BadUserInput(
            "extensions.persistedQuery must be an object",
            fields={"extensions.persistedQuery": "must be an object"},
        )
    version = raw.get("version")
    if type(version) is not int or version != SUPPORTED_VERSION:
        raise PersistedQueryNotSupported(
            f"only persistedQuery version {SUPPORTED_VERSION} is supported"
        )
    sha = raw.get("sha256Hash")
    if not isinstance(sha, str) or not _HASH.fullmatch(sha):
        raise BadUserInput(
            "sha256Hash must be 64 lowercase hex digits",
            fields={_HASH_FIELD: "must be 64 lowercase hex digits"},
        )
    return sha


def _root_fields(
    selections: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> Iterator[str | None]:
    """Names of the root fields, through fragments; ``None`` for a fragment that is missing."""
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:
                continue  # a cycle: validation refuses the document anyway
            fragment = fragments.get(name)
            if fragment is None:
                yield None
            else:
                yield from _root_fields(fragment.selection_set, fragments, seen | {name})


def only_saved_queries(document: DocumentNode) -> bool:
    """Whether every operation of ``document`` is a query selecting saved-query fields only."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = 0
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            continue
        if not isinstance(definition, OperationDefinitionNode):
            return False
        if definition.operation is not OperationType.QUERY:
            return False
        operations += 1
        roots = list(_root_fields(definition.selection_set, fragments, frozenset()))
        if not roots or not all(name in SAVED_QUERY_FIELDS for name in roots):
            return False
    return operations > 0


async def resolve(
    query: str | None,
    extensions: Mapping[str, Any] | None,
    *,
    subject: str | None,
    roles: Iterable[str],
    settings: Settings,
) -> str | None:
    """The document text one request runs, or a refusal raised before any other work.

    ``None`` back means there is no document at all (the GraphQL layer answers that). A refused
    request reads at most one persisted row by id and writes nothing.
    """
    sha = _requested_hash(extensions)
    restricted = settings.allowlisted(roles)
    if not query:
        if sha is None:
            return query
        text = await lookup(sha)
        if text is None:
            raise PersistedQueryNotFound
        return text
    if sha is None and not restricted:
        return query  # the common case: ordinary text, nothing to check
    own = digest(query)
    if sha is not None and sha != own:
        raise BadUserInput("provided sha does not match query", fields={_HASH_FIELD: "mismatch"})
    if not restricted:
        if sha is not None and subject is not None:
            # A document that does not parse is not stored; running it reports the error.
            with contextlib.suppress(BadUserInput):
                await register(query, subject, settings.shms_max_tokens)
        return query
    try:
        document = parse_document(query, settings.shms_max_tokens)
    except BadUserInput:
        return query  # runs nothing: execution reports the syntax (or token) error
    if only_saved_queries(document) or await lookup(own) is not None:
        return query
    if sha is not None:
        raise OperationNotAllowed(
            "Your role may not register persisted operations (SHMS_ALLOWLIST_ROLES); "
            "this one must be persisted at deploy time (`shms persist`)."
        )
    raise OperationNotAllowed(
        "Your role may run only persisted operations and saved queries "
        "(SHMS_ALLOWLIST_ROLES); this document is neither."
    )
