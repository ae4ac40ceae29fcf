"""Care relationships, computed from clinical facts that have a lifetime.

A clinician treats a patient (``Rel.CARE``), and a department is seeing them (``Rel.DEPARTMENT``),
only while a fact says so: every entity whose declaration has a ``CareSource`` contributes (an
upcoming or current appointment, one completed within ``SHMS_CARE_RELATIONSHIP_DAYS``, an active
treatment plan, and later admissions), and nothing else does. Cancelled and missed appointments
never do. When the facts end, so does the access.

The relations are derived data kept on the patient document (``Patient.care``), each stamped
with the instant it lapses, so a row check costs nothing beyond the patient row the checks load
anyway (and the document cache serves), and a clinician's list filter is one indexed query.
They are recomputed from the sources, never accumulated, by ``refresh`` after every write of a
source row (``services.changes.changed``); a compare-and-set on ``care_revision`` makes the last
recomputation one that read the sources after the last write. Lapsing needs no write: "until"
is compared with the clock at every check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

import db
from auth.policy import CONFIGURED_CARE_DAYS, REGISTRY, CareSource, Declaration
from config import get_settings
from models.base import utcnow
from models.patients import CareLink, Patient

ATTEMPTS = 8
"""Recomputations tried against concurrent writers before giving up (logged; fails closed on
the next refresh of the patient)."""


@dataclass(frozen=True)
class CareFacts:
    """Who treats one patient and which departments see them, each with when it lapses."""

    links: tuple[CareLink, ...]

    def _holds(self, attribute: str, key: ObjectId | None, now: datetime) -> bool:
        if key is None:
            return False
        return any(
            getattr(link, attribute) == key and (link.until is None or link.until > now)
            for link in self.links
        )

    def treated_by(
        self, staff_id: ObjectId | None, now: datetime, ward_id: ObjectId | None = None
    ) -> bool:
        """By the clinician themselves, or by the team of a ward they are assigned to."""
        return self._holds("clinician_id", staff_id, now) or self._holds("ward_id", ward_id, now)

    def seen_in(self, department_id: ObjectId | None, now: datetime) -> bool:
        return self._holds("department_id", department_id, now)


NONE = CareFacts(())


def of(patient: Patient | None) -> CareFacts:
    return CareFacts(tuple(patient.care)) if patient is not None else NONE


def sources() -> list[tuple[Declaration, CareSource]]:
    return [(d, d.care) for d in REGISTRY if d.care is not None and d.model is not None]


def _lifetime(value: timedelta | str | None) -> timedelta | None:
    if value == CONFIGURED_CARE_DAYS:
        return timedelta(days=get_settings().shms_care_relationship_days)
    assert not isinstance(value, str)
    return value


def links_of(source: CareSource, row: Mapping[str, Any]) -> list[CareLink]:
    """The relations one source row gives (``row`` as stored, snake_case): its clinician's
    (with its department), and its ward team's while the row is in a ward status."""
    raw_status = row.get(source.status)
    status = str(getattr(raw_status, "value", raw_status))
    out: list[CareLink] = []
    if status in source.lifetime:
        span = _lifetime(source.lifetime[status])
        ends = row.get(source.ends) if source.ends else None
        until = ends + span if span is not None and isinstance(ends, datetime) else None
        department = row.get(source.department) if source.department else None
        for field in (source.clinician, *source.also):
            clinician = row.get(field)
            if clinician is not None or field == source.clinician:
                out.append(CareLink(clinician_id=clinician, department_id=department, until=until))
    ward = row.get(source.ward) if source.ward else None
    if ward is not None and status in source.ward_statuses:
        out.append(CareLink(ward_id=ward))
    return out


def merge(links: Iterable[CareLink]) -> list[CareLink]:
    """One link per (clinician, department, ward), keeping the latest lapse (``None`` is
    latest)."""
    best: dict[tuple[Any, Any, Any], CareLink] = {}
    for link in links:
        key = (link.clinician_id, link.department_id, link.ward_id)
        old = best.get(key)
        if old is None or old.until is None:
            best[key] = old or link
        elif link.until is None or link.until > old.until:
            best[key] = link
    return [best[k] for k in sorted(best, key=lambda k: tuple(str(part) for part in k))]


def derive(rows: Iterable[Any]) -> dict[ObjectId, list[CareLink]]:
    """Relations per patient from documents in hand (seeding many at once: same rules as
    ``refresh``, no query)."""
    found: dict[ObjectId, list[CareLink]] = {}
    for row in rows:
        declaration = REGISTRY.for_model(type(row))
        if declaration is None or declaration.care is None:
            continue
        links = links_of(declaration.care, row.model_dump())
        patient = getattr(row, declaration.patient or "patient_id", None)
        if links and patient is not None:
            found.setdefault(patient, []).extend(links)
    return {patient: merge(links) for patient, links in found.items()}


async def _derive(patient_id: ObjectId) -> list[CareLink]:
    found: list[CareLink] = []
    for declaration, source in sources():
        assert declaration.model is not None  # sources() keeps collection-backed ones
        statuses = {str(s) for s in source.lifetime} | {str(s) for s in source.ward_statuses}
        query = {
            declaration.patient or "patient_id": patient_id,
            source.status: {"$in": sorted(statuses)},
        }
        async for row in db.collection(declaration.model).find(query):
            found.extend(links_of(source, row))
    return merge(found)


async def refresh(patient_id: ObjectId | None) -> Patient | None:
    """Recompute one patient's relations from their sources; the stored patient, or None."""
    if patient_id is None:
        return None
    patients = db.collection(Patient)
    for _ in range(ATTEMPTS):
        current = await patients.find_one({"_id": patient_id}, {"care_revision": 1})
        if current is None:
            return None
        revision = current.get("care_revision", 0)
        links = await _derive(patient_id)
        raw = await patients.find_one_and_update(
            {"_id": patient_id, "care_revision": revision},
            {
                "$set": {
                    "care": [link.model_dump(exclude_none=True) for link in links],
                    "care_revision": revision + 1,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if raw is not None:
            return Patient.model_validate(raw)
    raise RuntimeError(f"care relations of patient {patient_id} kept changing; retry the write")


def where(
    *,
    clinician: ObjectId | None = None,
    department: ObjectId | None = None,
    ward: ObjectId | None = None,
) -> dict[str, Any]:
    """The patients a clinician treats, a department sees, or a ward's team treats, now (one
    indexed filter; give exactly one of the three)."""
    now = utcnow()
    match: dict[str, Any] = {"$or": [{"until": None}, {"until": {"$gt": now}}]}
    if clinician is not None:
        match["clinician_id"] = clinician
    elif ward is not None:
        match["ward_id"] = ward
    else:
        match["department_id"] = department
    return {"care": {"$elemMatch": match}}
