"""The demo's imaging agrees with its visits, its scanners' bookings and its billing."""

from __future__ import annotations

from typing import Any

from demo import ids, seed_demo
from models import Appointment, BillingAccount, Doctor, MedicalEquipment, Reservation
from models.outpatient import OutpatientVisit
from models.radiology import (
    ImagingOrder,
    ImagingOrderStatus,
    ImagingReport,
    ImagingStudy,
)
from services import radiology
from tests.scheduling.helpers import assert_reservations_match_appointments
from tests.test_readme import section


async def test_demo_orders_come_from_visits_and_never_overlap_a_booking(database: Any) -> None:
    await seed_demo(80)
    orders = await ImagingOrder.find_all().to_list()
    assert len(orders) >= 3
    assert [o for o in orders if o.status == ImagingOrderStatus.ORDERED]
    for order in orders:
        visit = await OutpatientVisit.get(order.visit_id)
        assert visit is not None and visit.patient_id == order.patient_id
        assert visit.doctor_id == order.ordering_doctor_id
    studies = await ImagingStudy.find_all().to_list()
    assert len(studies) == len(orders) - 1
    for study in studies:
        device = await MedicalEquipment.get(study.equipment_id)
        assert device is not None and radiology.fits(study.modality, device)
        overlapping = await Appointment.find(
            {
                "equipment_id": study.equipment_id,
                "status": {"$ne": "cancelled"},
                "start_at": {"$lt": study.scheduled_end},
                "end_at": {"$gt": study.scheduled_start},
            }
        ).count()
        assert overlapping == 0, study.accession_number
        report = await ImagingReport.find_one({"final_for_study_id": study.id})
        assert report is not None and report.content_hash == radiology.content_hash(report)
        account = await BillingAccount.find_one({"patient_id": study.patient_id})
        assert account is not None
        charged = [c.source_id for c in account.charges if c.source == "imaging_study"]
        assert charged.count(study.id) == 1
        assert account.total_charged == sum(c.amount for c in account.charges)
    assert await Reservation.find({"holder": "imaging_study"}).count() == 0
    await assert_reservations_match_appointments()


async def test_the_readme_query_works_for_the_demo_radiologist(client_as: Any) -> None:
    await seed_demo(80)
    text = section("Radiology")
    query = text.split("```graphql\n", 1)[1].split("```", 1)[0]
    head = await Doctor.get(ids.doctor_id(8))
    assert head is not None
    radiologist = client_as(roles=["radiologist"], sid=str(head.id), did=str(head.department_id))
    nodes = (await radiologist.data(query))["imagingOrders"]["nodes"]
    assert nodes and all(
        n["report"]["contentHash"] and n["study"]["accessionNumber"] for n in nodes
    )
