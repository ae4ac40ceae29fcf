"""The demo ED: history for analytics, and a live board on the demo's today."""

from __future__ import annotations

from typing import Any

from cache import emergency as live
from demo.seed import seed_demo
from models.departments import Department
from models.emergency import DispositionKind, EmergencyStatus, EmergencyVisit


async def test_the_demo_ed_has_history_and_a_live_board(database: Any) -> None:
    summary = await seed_demo(patients=120)
    assert summary.emergency_visits > 20
    ed = await Department.find_one({"code": "ER"})
    assert ed is not None and ed.id is not None
    board = await live.from_mongo(ed.id)
    assert [e.level for e in board] == [None, 2, 3, 4, 5]  # awaiting triage first
    assert {e.status for e in board} == {
        EmergencyStatus.WAITING, EmergencyStatus.TRIAGED, EmergencyStatus.IN_TREATMENT
    }  # fmt: skip
    past = await EmergencyVisit.find({"status": "disposed"}).to_list()
    kinds = {v.disposition.kind for v in past if v.disposition is not None}
    assert DispositionKind.DISCHARGED in kinds and DispositionKind.LEFT_WITHOUT_BEING_SEEN in kinds
    for visit in past:
        assert visit.disposition is not None
        if visit.triage is not None:
            assert visit.arrived_at <= visit.triage.triaged_at <= visit.disposition.at
