"""Reference ranges by sex and age, and the flags they give."""

from __future__ import annotations

from datetime import date

import pytest

from demo.laboratory import _CATALOGUE
from models.laboratory import Analyte, ReferenceRange, ResultFlag
from models.patients import Sex, age_on
from services.laboratory import flag_for, reference_for


def analyte(test: str, code: str) -> Analyte:
    spec = next(s for s in _CATALOGUE if s["code"] == test)
    found: Analyte = next(a for a in spec["analytes"] if a.code == code)
    return found


@pytest.mark.parametrize(
    ("sex", "age", "expected"),
    [
        (Sex.MALE, 40, "13.5-17.5"),
        (Sex.FEMALE, 40, "12-15.5"),
        (Sex.MALE, 8, "11.5-15.5"),  # a child's band comes first, whatever the sex
        (Sex.FEMALE, 11, "11.5-15.5"),
        (Sex.MALE, 12, "13.5-17.5"),  # bands are [min, max): 12 is an adult here
        (Sex.UNKNOWN, 40, "12-17.5"),
    ],
)
def test_haemoglobin_range_by_sex_and_age(sex: Sex, age: int, expected: str) -> None:
    found = reference_for(analyte("CBC", "HGB"), sex, age)
    assert found is not None and found.label == expected


def test_no_fitting_range_flags_by_the_critical_limits_alone() -> None:
    only_men = Analyte(
        code="X", name="X", unit="1", ranges=[ReferenceRange(sex=Sex.MALE, low=1, high=2)],
        critical_high=10,
    )  # fmt: skip
    assert reference_for(only_men, Sex.FEMALE, 30) is None
    assert flag_for(5, only_men, None) == ResultFlag.NORMAL
    assert flag_for(11, only_men, None) == ResultFlag.CRITICAL_HIGH


def test_a_range_for_any_sex_catches_the_rest() -> None:
    creatinine = analyte("BMP", "CREA")
    assert reference_for(creatinine, Sex.MALE, 50).label == "62-106"  # type: ignore[union-attr]
    assert reference_for(creatinine, Sex.FEMALE, 50).label == "44-80"  # type: ignore[union-attr]
    assert reference_for(creatinine, Sex.OTHER, 50).label == "44-106"  # type: ignore[union-attr]
    assert reference_for(creatinine, Sex.MALE, 10).label == "27-62"  # type: ignore[union-attr]


def test_age_is_whole_years_at_collection() -> None:
    assert age_on(date(1960, 5, 1), date(2026, 4, 30)) == 65
    assert age_on(date(1960, 5, 1), date(2026, 5, 1)) == 66
    assert age_on(date(2020, 2, 29), date(2021, 2, 28)) == 0


@pytest.mark.parametrize(
    ("value", "flag"),
    [
        (2.4, ResultFlag.CRITICAL_LOW),
        (2.5, ResultFlag.LOW),  # the limit itself is not critical
        (3.4, ResultFlag.LOW),
        (3.5, ResultFlag.NORMAL),
        (5.1, ResultFlag.NORMAL),
        (5.2, ResultFlag.HIGH),
        (6.0, ResultFlag.HIGH),
        (6.8, ResultFlag.CRITICAL_HIGH),
    ],
)
def test_potassium_flags(value: float, flag: ResultFlag) -> None:
    potassium = analyte("BMP", "K")
    assert flag_for(value, potassium, reference_for(potassium, Sex.FEMALE, 30)) == flag


def test_one_sided_ranges() -> None:
    hdl = analyte("LIPID", "HDL")
    assert flag_for(0.9, hdl, reference_for(hdl, Sex.MALE, 50)) == ResultFlag.LOW
    assert flag_for(1.1, hdl, reference_for(hdl, Sex.MALE, 50)) == ResultFlag.NORMAL
    assert flag_for(1.1, hdl, reference_for(hdl, Sex.FEMALE, 50)) == ResultFlag.LOW
    ldl = analyte("LIPID", "LDL")
    assert flag_for(9.0, ldl, reference_for(ldl, Sex.FEMALE, 50)) == ResultFlag.HIGH


def test_a_range_must_make_sense() -> None:
    with pytest.raises(ValueError):
        ReferenceRange(low=5, high=3)
    with pytest.raises(ValueError):
        ReferenceRange()
    with pytest.raises(ValueError):
        ReferenceRange(low=1, min_age_years=18, max_age_years=12)
