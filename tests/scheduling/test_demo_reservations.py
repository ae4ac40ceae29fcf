"""The demo's active appointments hold their slots, so booking over them is refused."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from demo import seed_demo
from errors import Conflict
from models import Appointment
from models.scheduling import ACTIVE_APPOINTMENT_STATUSES, ReservedResource
from services import scheduling
from tests.scheduling.helpers import assert_reservations_match_appointments


async def test_demo_appointments_hold_their_slots(database: Any) -> None:
    summary = await seed_demo(30)
    active = await assert_reservations_match_appointments()
    assert active and summary.reservations > 0
    taken = await Appointment.find_one(
        {"status": {"$in": [s.value for s in ACTIVE_APPOINTMENT_STATUSES]}}
    )
    assert taken is not None
    with pytest.raises(Conflict) as clash:
        await scheduling.reserve(
            ObjectId(), {(ReservedResource.DOCTOR, taken.doctor_id, taken.start_at)}
        )
    assert clash.value.extensions["appointmentIds"] == [str(taken.id)]
