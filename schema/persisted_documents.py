"""The GraphQL side of persisted operations: parsing a document and reading the facts the
allow-list rules of ``services.persisted`` decide on.

Parsing belongs to the API layer, with the rest of graphql-core; the service stores and looks
up text by hash and applies the rules to ``Analysed`` facts without knowing a parser exists.
"""

from __future__ import annotations

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
    SelectionSetNode,
    parse,
)

from config import Settings
from errors import BadUserInput
from services import persisted
from services.persisted import Analysed, Operation


def parse_document(text: str, max_tokens: int | None = None) -> DocumentNode:
    """Parse ``text`` or raise ``BAD_USER_INPUT`` (only documents that parse are stored)."""
    try:
        return parse(text, max_tokens=max_tokens)
    except GraphQLError as error:
        raise BadUserInput(
            f"The document does not parse: {error.message}", fields={"query": error.message}
        ) from None


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


def facts(document: DocumentNode) -> Analysed:
    """The operations of a parsed document, each with its kind and root field names."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = tuple(
        Operation(d.operation.value, tuple(_root_fields(d.selection_set, fragments, frozenset())))
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )
    executable = all(
        isinstance(d, (OperationDefinitionNode, FragmentDefinitionNode))
        for d in document.definitions
    )
    return Analysed(operations, executable)


def analyse(text: str, max_tokens: int | None = None) -> Analysed:
    """``facts`` of ``text``, or ``BAD_USER_INPUT`` when it does not parse."""
    return facts(parse_document(text, max_tokens))


async def register(text: str, registered_by: str | None, max_tokens: int | None = None) -> str:
    """Store ``text`` under its hash once it parses (``shms persist`` and the tests)."""
    parse_document(text, max_tokens)
    return await persisted.register(text, registered_by)


async def resolve(
    query: str | None,
    extensions: Mapping[str, Any] | None,
    *,
    subject: str | None,
    roles: Iterable[str],
    settings: Settings,
) -> str | None:
    """``services.persisted.resolve`` with this layer's parser, bounded by the token limit."""

    def analyse_bounded(text: str) -> Analysed:
        return analyse(text, settings.shms_max_tokens)

    return await persisted.resolve(
        query, extensions, subject=subject, roles=roles, settings=settings, analyse=analyse_bounded
    )
