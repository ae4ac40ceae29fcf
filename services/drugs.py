"""The drug master: keeping products, finding them by name prefix, and naming a prescription's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bson import ObjectId

from errors import BadUserInput
from models.clinical import Prescription
from models.drugs import ControlledSchedule, Drug, DrugForm, match_keys
from models.patients import fold, name_tokens
from services import common
from services.pagination import ASC, Page, PageArgs, Query, Sort, both, paginate
from services.patients import search_words
from services.validation import build, merged, require

BY_NAME: Sort = (("generic_name", ASC), ("_id", ASC))
_NAMES = frozenset({"generic_name", "brand_names", "form", "strength"})


def drug_filter(
    *,
    search: str | None = None,
    active: bool | None = None,
    form: DrugForm | None = None,
    schedule: ControlledSchedule | None = None,
    controlled: bool | None = None,
    atc_prefix: str | None = None,
) -> Query:
    """``search``: every word must prefix a generic or brand name word (as patients' names)."""
    words = search_words(search)  # drug names are no secret: their tokens are kept in clear
    query: Query = {"search_tokens": {"$all": words}} if words else {}
    if active is not None:
        query["active"] = active
    if form is not None:
        query["form"] = form.value
    if schedule is not None:
        query["schedule"] = schedule.value
    elif controlled is not None:
        none = ControlledSchedule.NONE.value
        query["schedule"] = {"$ne": none} if controlled else none
    if atc_prefix:
        code = atc_prefix.strip().upper()
        require(code.isalnum() and len(code) <= 7, "atcCode", "is an ATC code or its start")
        # An anchored prefix on an indexed field: the range every code starting so lies in.
        query["atc_code"] = {"$gte": code, "$lt": code + "\uffff"}
    return query


async def list_drugs(query: Query, args: PageArgs, scope: Query | None = None) -> Page[Drug]:
    return await paginate(Drug, both(query, scope), BY_NAME, args)


async def get_drug(id: ObjectId) -> Drug:
    return await common.get_or_404(Drug, id, "Drug")


async def create_drug(data: Mapping[str, Any]) -> Drug:
    require(not {"search_tokens", "match_keys"} & data.keys(), "input", "derived fields")
    drug = build(Drug, data)
    drug.refresh_derived()
    return await common.insert(drug, "drug")


async def update_drug(id: ObjectId, changes: Mapping[str, Any]) -> Drug:
    """Dispenses keep the price they were made at, so the master may change freely."""
    drug = await get_drug(id)
    require(not {"search_tokens", "match_keys"} & changes.keys(), "input", "derived fields")
    changes = dict(changes)
    if _NAMES & changes.keys():
        candidate, _ = merged(drug, changes)
        changes["search_tokens"] = name_tokens(candidate.generic_name, *candidate.brand_names)
        changes["match_keys"] = match_keys(
            candidate.generic_name, candidate.form, candidate.strength
        )
    return await common.update(drug, changes, "drug")


def _key(text: str) -> str:
    return " ".join(fold(text).split())


async def for_prescription(prescription: Prescription) -> Drug:
    """The product a prescription is for: its ``drug_id``, else the one active product its text
    names exactly (generic name, optionally with form and strength); several products of that
    name are told apart by the prescribed dose being one unit's strength ("1 g")."""
    if prescription.drug_id is not None:
        found = await Drug.get(prescription.drug_id)
        if found is None:
            raise BadUserInput("prescriptionId: its drug is not in the master", {"drugId": "gone"})
        return found
    key = _key(prescription.drug)
    candidates = await Drug.find({"match_keys": key, "active": True}).to_list()
    if len(candidates) > 1:
        dose = _key(prescription.dose)
        candidates = [d for d in candidates if _key(d.strength.text()) == dose] or candidates
    if len(candidates) == 1:
        return candidates[0]
    reason = (
        f"no active drug in the master is named {prescription.drug!r}"
        if not candidates
        else f"{len(candidates)} products are named {prescription.drug!r}: give the prescription "
        "a drugId"
    )
    raise BadUserInput(f"prescriptionId: {reason}", {"prescriptionId": reason})
