"""What erasing a patient changes in each collection, derived from the declared domain.

No list of collections or fields lives here. A collection holds a patient's data when its
declaration names the patient (``patient=``), makes rows the patient's own (``own=`` on the
principal's ``patient_id``), or its documents have a ``patient_id`` field. In each of its
documents about the patient, by the classification of each field group:

- identity, contact, demographic: the value is removed (an optional field unset, a list
  emptied, a field with a default put back to it; a required text field takes ``ERASED_TEXT``);
- clinical and security: free text is removed, wherever it is nested (``ERASED_TEXT`` where
  the model requires a value). Free text is a string a person typed: the model strips its
  whitespace (``Name``, ``ShortText``, ``LongText``) and gives it no pattern. Codes, patterns,
  references, enums, numbers, instants and flags are kept: the structured record stays,
  under the pseudonymised patient;
- financial and operational: kept (billing records are retained by law; operational fields
  hold no free text about the patient).

The patient document itself, accounts and the audit trail are handled by ``services.erasure``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo

from auth.policy import REGISTRY, Classification, Declaration

ERASED_TEXT = "[erased]"
"""What a required free-text field holds once erased."""

REMOVED = frozenset({Classification.IDENTITY, Classification.CONTACT, Classification.DEMOGRAPHIC})
"""Field groups whose every value is removed."""
TEXT_REMOVED = frozenset({Classification.CLINICAL, Classification.SECURITY})
"""Field groups whose free text is removed."""

_STRUCTURAL: tuple[type, ...] = (ObjectId, datetime, date, bool, int, float, Enum)
_ABSENT = object()


def _metadata(info: FieldInfo) -> tuple[Any, list[Any]]:
    return info.annotation, list(info.metadata)


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any], bool]:
    """The bare type under ``Annotated`` and ``X | None``, its constraints, and optionality."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            parts = typing.get_args(annotation)
            annotation, metadata = parts[0], [*metadata, *parts[1:]]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) != 1:
                return annotation, metadata, optional
            annotation = args[0]
        else:
            return annotation, metadata, optional


def free_text(metadata: list[Any]) -> bool:
    return any(
        isinstance(m, StringConstraints) and m.strip_whitespace and m.pattern is None
        for m in metadata
    )


def _structural(bare: Any) -> bool:
    if typing.get_origin(bare) is typing.Literal:
        return True
    return isinstance(bare, type) and issubclass(bare, _STRUCTURAL)


def scrub_text(annotation: Any, metadata: list[Any], value: Any) -> Any:
    """``value`` with its free text removed, nested models and lists included."""
    if value is None:
        return None
    bare, meta, optional = _unwrap(annotation, metadata)
    origin = typing.get_origin(bare)
    if origin in (list, tuple, set) and isinstance(value, list):
        args = typing.get_args(bare)
        inner = args[0] if args else Any
        return [scrub_text(inner, [], item) for item in value]
    if isinstance(bare, type) and issubclass(bare, BaseModel) and isinstance(value, Mapping):
        out = dict(value)
        for name, info in bare.model_fields.items():
            key = info.alias or name
            if key in out:
                out[key] = scrub_text(*_metadata(info), out[key])
        return out
    if bare is str and isinstance(value, str) and free_text(meta):
        return None if optional else ERASED_TEXT
    return value


def removed(info: FieldInfo, value: Any) -> Any:
    """The value a removed field takes; ``_ABSENT`` to unset it."""
    bare, _, optional = _unwrap(*_metadata(info))
    if _structural(bare) or value is None:
        return value
    if optional:
        return _ABSENT
    if typing.get_origin(bare) in (list, tuple, set):
        return []
    if not info.is_required():
        default = info.get_default(call_default_factory=True)
        return default.model_dump(mode="python") if isinstance(default, BaseModel) else default
    if bare is str:
        return ERASED_TEXT
    return value  # a required value with no neutral form (none is declared today)


@dataclass(frozen=True)
class Target:
    """One collection holding the patient's data, and how its documents name the patient."""

    declaration: Declaration
    selector: str
    """The stored field equal to the patient's id (``patient_id``, ``recipient.id``...)."""
    removed: tuple[str, ...]
    text: tuple[str, ...]
    """Top-level stored fields: values removed, and free text removed."""

    @property
    def model(self) -> Any:
        return self.declaration.model

    def scrub(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The ``$set`` and ``$unset`` that erase ``raw``; both empty when already erased."""
        sets: dict[str, Any] = {}
        unsets: list[str] = []
        fields = self.model.model_fields
        for name in (*self.removed, *self.text):
            if name not in raw:
                continue
            info = fields[name]
            if name in self.removed:
                new = removed(info, raw[name])
            else:
                new = scrub_text(*_metadata(info), raw[name])
                if new is None and raw[name] is not None:
                    new = _ABSENT
            if new is _ABSENT:
                unsets.append(name)
            elif new != raw[name]:
                sets[name] = new
        return sets, unsets


def _selector(d: Declaration) -> str | None:
    """The field naming whose data a document is. A ``patient_id`` field wins over the
    declaration's ``patient=``, which says who may see the row and can be narrower (a clinical
    note's ``chart_patient_id`` is set once it is signed: drafts are about the patient too)."""
    fields = getattr(d.model, "model_fields", {})
    if "patient_id" in fields:
        return "patient_id"
    if d.patient is not None and d.patient != "id":
        return d.patient
    for path, attribute in d.own:
        if attribute == "patient_id":
            return path
    return None


def _stored_fields(d: Declaration, classes: frozenset[Classification]) -> Iterator[str]:
    fields = d.model.model_fields if d.model is not None else {}
    for group in d.groups:
        if group.classification not in classes:
            continue
        for name in group.fields:
            snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
            if snake in fields and snake not in ("id", d.patient, _selector(d)):
                yield snake


def targets(excluded: frozenset[str]) -> list[Target]:
    """Every declared collection, other than ``excluded`` kinds, that holds patients' data."""
    out = []
    for d in REGISTRY:
        if d.kind in excluded or d.collection is None or d.patient == "id":
            continue
        selector = _selector(d)
        if selector is None:
            continue
        gone = tuple(dict.fromkeys(_stored_fields(d, REMOVED)))
        text = tuple(f for f in dict.fromkeys(_stored_fields(d, TEXT_REMOVED)) if f not in gone)
        out.append(Target(d, selector, gone, text))
    return out
