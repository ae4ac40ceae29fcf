"""GraphQL types and inputs for the drug master."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import drugs as m
from schema.clinical import Route
from schema.common import Long, Money, entity_id

strawberry.enum(m.DrugForm)
DrugForm = m.DrugForm
strawberry.enum(
    m.ControlledSchedule,
    description="US Controlled Substances Act schedule (II-V); NONE: not controlled. A "
    "controlled drug's dispense needs a second pharmacist's confirmation.",
)
ControlledSchedule = m.ControlledSchedule


@strawberry.type(description="The amount of active ingredient in one unit (500 mg, 1%).")
class Strength:
    value: float
    unit: str

    @strawberry.field(description="As prescriptions write it: '500 mg', '1%'.")
    @staticmethod
    def text(root: strawberry.Parent[m.Strength]) -> str:
        return root.text()


@strawberry.type(description="A product of the drug master: one generic in one form and strength.")
class Drug:
    id: strawberry.ID = strawberry.field(resolver=entity_id)
    generic_name: str
    brand_names: list[str]
    form: DrugForm
    strength: Strength
    route: Route
    atc_code: str = strawberry.field(description="WHO ATC code, level 5 (J01CA04).")
    rxnorm_code: str | None = strawberry.field(description="RxNorm concept id (digits).")
    schedule: ControlledSchedule
    unit_of_issue: str = strawberry.field(description="What one unit of stock is.")
    active: bool
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="Whether dispensing needs a second pharmacist.")
    @staticmethod
    def controlled(root: strawberry.Parent[m.Drug]) -> bool:
        return root.controlled

    @strawberry.field(description="Per unit of issue: what a dispense charges per unit.")
    @staticmethod
    def price(root: strawberry.Parent[m.Drug]) -> Money | None:
        return Money(amount=Long(root.price), currency=root.currency)


@strawberry.input
class StrengthInput:
    value: float
    unit: str


@strawberry.input
class CreateDrugInput:
    generic_name: str
    brand_names: list[str] = strawberry.field(default_factory=list)
    form: DrugForm
    strength: StrengthInput
    route: Route
    atc_code: str
    rxnorm_code: str | None = None
    schedule: ControlledSchedule = ControlledSchedule.NONE
    unit_of_issue: str
    price: int = strawberry.field(description="Per unit of issue, in minor units.")
    currency: str = "EUR"
    active: bool = True


@strawberry.input(description="Only the fields given change.")
class UpdateDrugInput:
    generic_name: str | None = strawberry.UNSET
    brand_names: list[str] | None = strawberry.UNSET
    form: DrugForm | None = strawberry.UNSET
    strength: StrengthInput | None = strawberry.UNSET
    route: Route | None = strawberry.UNSET
    atc_code: str | None = strawberry.UNSET
    rxnorm_code: str | None = strawberry.UNSET
    schedule: ControlledSchedule | None = strawberry.UNSET
    unit_of_issue: str | None = strawberry.UNSET
    price: int | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
