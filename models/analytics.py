"""Analytics has no collection of its own: its declaration says who may read the aggregates."""

from __future__ import annotations

from auth.policy import A, Access, R, declare, grant, row
from auth.policy import Classification as Class

# Complete for admin; analysts get them de-identified (small-cell suppression).
ANALYTICS = declare(
    "Analytics",
    None,
    row(
        Class.OPERATIONAL,
        (
            "appointmentsPerDoctor",
            "appointmentsOverTime",
            "conditionsBySpecialty",
            "appointmentsPerPatient",
            "noShowRate",
            "equipmentUtilisation",
            "revenue",
            "labTurnaround",
            "outpatientWaitingTime",
            "bedOccupancy",
            "lengthOfStay",
            "theatreUtilisation",
            "emergencyTimes",
            "dispensingVolume",
            "pharmacyStock",
            "claimsByPayer",
            "daysInAccountsReceivable",
        ),
        {R.ADMIN: grant(A), R.ANALYST: grant(A, access=Access.MASKED)},
    ),
)
