"""The drug master: what the pharmacy stocks and dispenses, one row per product (a generic name
in one form and strength), with its codes, controlled-substance schedule and price.

Name search works like the patients' (``models.patients.name_tokens``): every prefix of every
word of the generic and brand names is stored in ``search_tokens``, an indexed array, so
``drugs(search: "amox")`` is one index lookup, never ``$text`` or a regex scan.
``match_keys`` are the folded spellings a free-text prescription may use for the drug (its
generic name, with the strength, with form and strength: "Hydrocortisone cream 1%"); dispensing
a prescription written before the master existed maps its text through them.

Who reads what: the drug master is reference data for every staff role, pharmacists and
patients (their dispenses name the drug); its price is financial (pharmacists, billing, admin).
Pharmacists and admins keep it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import pymongo
from pydantic import BaseModel, Field, StringConstraints

from auth.policy import STAFF_ROLES, A, Action, R, declare, each, grant, group, row
from auth.policy import Classification as Class
from models.base import Currency, Entity, Name, ShortText
from models.clinical import Route
from models.patients import fold, name_tokens


class DrugForm(StrEnum):
    TABLET = "tablet"
    CAPSULE = "capsule"
    SOLUTION = "solution"
    SUSPENSION = "suspension"
    SYRUP = "syrup"
    INJECTION = "injection"
    INFUSION = "infusion"
    CREAM = "cream"
    OINTMENT = "ointment"
    GEL = "gel"
    INHALER = "inhaler"
    PATCH = "patch"
    SUPPOSITORY = "suppository"
    DROPS = "drops"
    OTHER = "other"


class ControlledSchedule(StrEnum):
    """The US Controlled Substances Act schedules a prescribable drug can have (schedule I has no
    accepted medical use, so nothing dispensable is in it); ``none``: not controlled. Any other
    value means dispensing needs a second pharmacist's confirmation (``services.pharmacy``)."""

    NONE = "none"
    II = "II"  # high potential for abuse: opioids such as morphine, oxycodone; stimulants
    III = "III"  # ketamine, anabolic steroids
    IV = "IV"  # benzodiazepines (lorazepam, diazepam), tramadol
    V = "V"  # low-dose codeine preparations, pregabalin


StrengthUnit = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z%µ/]{1,12}$")
]


class Strength(BaseModel):
    value: float = Field(gt=0, le=1_000_000)
    unit: StrengthUnit = Field(description="mg, mcg, g, ml, mg/ml, IU, % ...")

    def text(self) -> str:
        """'500 mg', '1 g', '1%': how prescriptions write a dose of one unit."""
        number = f"{self.value:g}"
        return f"{number}{self.unit}" if self.unit == "%" else f"{number} {self.unit}"


ATC_PATTERN = r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$"
"""A full (level 5) WHO ATC code: anatomical group, two digits, two letters, two digits
(J01CA04 is amoxicillin)."""


class Drug(Entity):
    generic_name: Name
    brand_names: list[Name] = Field(default_factory=list, max_length=20)
    form: DrugForm
    strength: Strength
    route: Route
    atc_code: str = Field(pattern=ATC_PATTERN)
    rxnorm_code: str | None = Field(default=None, pattern=r"^[0-9]{1,10}$")
    schedule: ControlledSchedule = ControlledSchedule.NONE
    unit_of_issue: ShortText = Field(description="What one unit of stock is: tablet, vial ...")
    price: int = Field(ge=0, le=10**9, description="Per unit of issue, in minor units")
    currency: Currency = "EUR"
    active: bool = True
    search_tokens: list[str] = Field(default_factory=list)
    match_keys: list[str] = Field(default_factory=list)

    @property
    def controlled(self) -> bool:
        return self.schedule != ControlledSchedule.NONE

    def refresh_derived(self) -> None:
        self.search_tokens = name_tokens(self.generic_name, *self.brand_names)
        self.match_keys = match_keys(self.generic_name, self.form, self.strength)

    class Settings:
        name = "drugs"
        indexes = [
            pymongo.IndexModel("search_tokens"),
            pymongo.IndexModel("match_keys"),
            pymongo.IndexModel([("generic_name", 1), ("_id", 1)]),
            pymongo.IndexModel("atc_code"),
        ]


def match_keys(generic_name: str, form: DrugForm, strength: Strength) -> list[str]:
    """The folded spellings of a drug a free-text prescription may use."""
    name = " ".join(fold(generic_name).split())
    dose = fold(strength.text())
    return sorted({name, f"{name} {dose}", f"{name} {form.value} {dose}"})


# -- policy ---------------------------------------------------------------------------------------

PHARMACIST = R.PHARMACIST
_READERS = each((*STAFF_ROLES, PHARMACIST, R.PATIENT), grant(A))
_KEEPERS = {PHARMACIST: grant(A), R.ADMIN: grant(A)}

DRUG = declare(
    "Drug",
    Drug,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "genericName",
            "brandNames",
            "form",
            "strength",
            "route",
            "atcCode",
            "rxnormCode",
            "schedule",
            "controlled",
            "unitOfIssue",
            "active",
            "createdAt",
            "updatedAt",
        ),
        _READERS,
    ),
    group(
        "price",
        Class.FINANCIAL,
        ("price",),
        {PHARMACIST: grant(A), R.BILLING: grant(A), R.ADMIN: grant(A)},
    ),
    actions={Action.CREATE: _KEEPERS, Action.UPDATE: _KEEPERS},
    cached=True,
    order=(("generic_name", 1), ("_id", 1)),
)
