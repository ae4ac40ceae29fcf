"""Small-cell suppression for aggregates read by analysts.

A group of fewer than ``threshold`` distinct patients can point at a person ("the one patient
of Dr X who missed three visits in March"), so a de-identified answer keeps such a group's key
but withholds every measure. Totals over groups are taken over the visible groups only:
otherwise a withheld cell would be the total minus the cells shown. Empty groups (zero
patients) hold nobody and are shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Disclosure:
    """How much of an aggregate a viewer may see: everything, or groups of ``threshold``+."""

    threshold: int | None = None

    @classmethod
    def full(cls) -> Disclosure:
        return cls(None)

    @property
    def deidentified(self) -> bool:
        return self.threshold is not None

    @property
    def scope(self) -> str:
        """The result-cache scope: viewers with the same disclosure may share an answer."""
        return "full" if self.threshold is None else f"deidentified:{self.threshold}"

    @property
    def minimum(self) -> int:
        """Fewest patients a group needs to be visible (for ``$match`` in pipelines)."""
        return self.threshold or 0

    def hides(self, patients: int | None) -> bool:
        return self.threshold is not None and patients is not None and 0 < patients < self.threshold

    def header(self, suppressed: int) -> Row:
        """The fields every report carries about its own de-identification."""
        return {
            "deidentified": self.deidentified,
            "suppression_threshold": self.threshold,
            "suppressed_groups": suppressed,
        }


def withhold(row: Row, measures: Iterable[str]) -> Row:
    """``row`` with every measure and its patient count nulled, and marked suppressed."""
    return {**row, **{name: None for name in measures}, "patients": None, "suppressed": True}


def suppress(rows: Iterable[Row], measures: Iterable[str], disclosure: Disclosure) -> list[Row]:
    """Rows as the viewer may see them; each gets ``suppressed``."""
    names = tuple(measures)
    return [
        withhold(row, names) if disclosure.hides(row["patients"]) else {**row, "suppressed": False}
        for row in rows
    ]


def count_suppressed(rows: Iterable[Row]) -> int:
    return sum(1 for row in rows if row["suppressed"])
