"""Registering and updating patients, and finding them by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bson import ObjectId

from errors import BadUserInput
from models.patients import Patient, fold, sealed_tokens, sealed_words
from models.staff import Doctor
from services import common
from services.pagination import ASC, Page, PageArgs, Query, Sort, both, paginate
from services.validation import Problems, merged, require

NAME_ORDER: Sort = (("_id", ASC),)
"""Registration order: names are encrypted at rest, so the database cannot sort by them."""


def search_words(search: str | None) -> list[str]:
    """The words of a name search, folded as name tokens are; at most 6 of 50 characters."""
    words = sorted(set(fold(search or "").replace("-", " ").replace("'", " ").split()))
    require(len(words) <= 6, "search", "may have at most 6 words")
    require(all(len(w) <= 50 for w in words), "search", "words may be at most 50 characters")
    return words


def search_filter(search: str | None) -> Query:
    """Every word of ``search`` must prefix a name word; matched on the indexed token array,
    which holds keyed hashes of the prefixes (the words are hashed the same way)."""
    words = search_words(search)
    return {"search_tokens": {"$all": sealed_words(words)}} if words else {}


async def list_patients(
    search: str | None, args: PageArgs, scope: Query | None = None
) -> Page[Patient]:
    """``scope`` is the caller's row filter from the access policy."""
    return await paginate(Patient, both(search_filter(search), scope), NAME_ORDER, args)


async def get_patient(id: ObjectId) -> Patient:
    return await common.get_or_404(Patient, id, "Patient")


async def _known_doctor(problems: Problems, doctor_id: Any) -> None:
    """The primary doctor must exist (unless the id itself was already found invalid)."""
    if "primaryDoctorId" not in problems:
        check = common.ensure_exists(Doctor, doctor_id, "primaryDoctorId", "doctor")
        await problems.check(check)


async def register_patient(data: Mapping[str, Any]) -> Patient:
    problems = Problems()  # field errors and an unknown doctor are reported together
    patient = problems.build(Patient, data)
    await _known_doctor(problems, data.get("primary_doctor_id"))
    problems.raise_any()
    assert patient is not None  # built, or raise_any raised
    patient.refresh_search_tokens()
    return await common.insert(patient, "patient")


async def update_patient(id: ObjectId, changes: Mapping[str, Any]) -> Patient:
    patient = await get_patient(id)
    problems = Problems()
    candidate = None
    try:  # the whole changed record, validated before deriving tokens or looking anything up
        candidate, _ = merged(patient, changes)
    except BadUserInput as problem:
        problems.add(problem)
    if "primary_doctor_id" in changes:
        await _known_doctor(problems, changes["primary_doctor_id"])
    problems.raise_any()
    changes = dict(changes)
    if candidate is not None and {"first_name", "last_name"} & changes.keys():
        changes["search_tokens"] = sealed_tokens(candidate.first_name, candidate.last_name)
    return await common.update(patient, changes, "patient")
