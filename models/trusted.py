"""Building documents from what SHMS itself stored, without validating them again.

Every document in MongoDB (and its copy in the cache) was validated when it was written:
inputs are checked by the services, and models validate on construction. Re-validating it on
every read cost a fifth of a large page (and ran validators such as "born in the past" against
today's date, which can only refuse data already accepted). ``trusted(Model, raw)`` converts
only what BSON cannot say: UTC offsets on datetimes, ``date`` from its stored midnight,
enums from their values, nested models, and fields absent from older documents (their
defaults). A per-model plan is compiled once from the annotations.

``tests/test_trusted.py`` proves, on every document of the demo data, that the result equals
what validation would build. A value SHMS did not write should go through ``model_validate``.
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, cast

from bson import ObjectId
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from crypto.fields import SEALED, Sealing, open_document

_set = object.__setattr__

M = TypeVar("M", bound=BaseModel)
Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _day(value: Any) -> Any:
    return value.date() if isinstance(value, datetime) else value


def _validated(annotation: Any) -> Convert:
    """The slow path for shapes the plan does not know (unions of several types)."""
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    return adapter.validate_python


def _optional(inner: Convert) -> Convert:
    if inner is _same:
        return _same
    return lambda value: None if value is None else inner(value)


def _list(inner: Convert) -> Convert:
    if inner is _same:
        return lambda value: list(value) if isinstance(value, list) else value
    return lambda value: [inner(item) for item in value] if isinstance(value, list) else value


def _dict(inner: Convert) -> Convert:
    if inner is _same:
        return lambda value: dict(value) if isinstance(value, Mapping) else value
    return lambda value: (
        {k: inner(v) for k, v in value.items()} if isinstance(value, Mapping) else value
    )


def _enum(cls: type[Enum]) -> Convert:
    return lambda value: value if isinstance(value, cls) else cls(value)


def _subclass(cls: type[ObjectId]) -> Convert:
    return lambda value: cls(value) if type(value) is ObjectId else value


def _converter(annotation: Any) -> Convert:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _converter(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _optional(_converter(members[0]))
        return _optional(_validated(annotation))
    if origin in (list, set, frozenset, tuple) or origin is typing.Sequence:
        args = typing.get_args(annotation)
        if origin is list and args:
            return _list(_converter(args[0]))
        return _validated(annotation)
    if origin in (dict, typing.Mapping) or origin is Mapping:
        args = typing.get_args(annotation)
        return _dict(_converter(args[1]) if len(args) == 2 else _same)
    if origin is typing.Literal:
        return _same
    if isinstance(annotation, type):
        if issubclass(annotation, datetime):
            return _utc
        if issubclass(annotation, date):
            return _day
        if issubclass(annotation, Enum):
            return _enum(annotation)
        if issubclass(annotation, ObjectId) and annotation is not ObjectId:
            return _subclass(annotation)  # PydanticObjectId
        if issubclass(annotation, BaseModel):
            return lambda value: trusted(annotation, value) if isinstance(value, Mapping) else value
    return _same


Default = Callable[[dict[str, Any]], Any]


def _takes_data(factory: Callable[..., Any]) -> bool:
    """Whether a default factory wants the fields validated so far (pydantic's convention)."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # builtins such as ``list`` have no signature to read
        return False
    return (
        len(parameters) == 1
        and parameters[0].kind
        in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and parameters[0].default is inspect.Parameter.empty
    )


def _default(info: FieldInfo) -> Default:
    """How a field absent from an older document gets its value, decided once per field."""
    factory = info.default_factory
    if factory is None:
        default = info.default
        return lambda values: copy.deepcopy(default)
    if _takes_data(factory):
        with_data = cast(Callable[[dict[str, Any]], Any], factory)
        return with_data
    plain = cast(Callable[[], Any], factory)
    return lambda values: plain()


@dataclass(frozen=True)
class _Field:
    name: str
    key: str
    convert: Convert
    default: Default | None  # None: required


@dataclass(frozen=True)
class _Plan:
    fields: tuple[_Field, ...]
    private: tuple[tuple[str, Any], ...]
    post_init: bool
    sealing: Sealing | None  # stored documents hold these fields encrypted (crypto.fields)


@cache
def _plan(model: type[BaseModel]) -> _Plan:
    hints = typing.get_type_hints(model, include_extras=True)
    fields = tuple(
        _Field(
            name,
            "_id" if name == "id" else (info.alias or name),
            _converter(hints.get(name, info.annotation)),
            None if info.is_required() else _default(info),
        )
        for name, info in model.model_fields.items()
    )
    private = tuple(
        (name, attr)
        for name, attr in model.__private_attributes__.items()
        if attr.get_default() is not PydanticUndefined or attr.default_factory is not None
    )
    return _Plan(fields, private, bool(model.__pydantic_post_init__), SEALED.get(model))


def trusted(model: type[M], raw: Mapping[str, Any]) -> M:
    """``model`` built from a stored document, without validation (see the module's doc).

    What ``model_construct`` does, minus its per-call inspection of default factories, which
    cost more than the whole document."""
    plan = _plan(model)
    if plan.sealing is not None:  # opened here, after the cache: Redis holds the ciphertext
        raw = open_document(plan.sealing, raw)
    values: dict[str, Any] = {}
    present: set[str] = set()
    for f in plan.fields:
        if f.key in raw:
            values[f.name] = f.convert(raw[f.key])
            present.add(f.name)
        elif f.name in raw:
            values[f.name] = f.convert(raw[f.name])
            present.add(f.name)
        elif f.default is not None:
            values[f.name] = f.default(values)
    built = model.__new__(model)
    _set(built, "__dict__", values)
    _set(built, "__pydantic_fields_set__", present)
    _set(built, "__pydantic_extra__", None)
    _set(built, "__pydantic_private__", None)
    if plan.post_init:
        built.model_post_init(None)
    elif plan.private:
        _set(built, "__pydantic_private__", {n: a.get_default() for n, a in plan.private})
    return built
