"""The operations dashboard in a real browser: it signs in, shows a department, and changes made
through the API (an equipment status, a booking) reach it live, the first within a second."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tests.browser.conftest import Network, graphql, sign_in
from tests.e2e.servers import Server

if TYPE_CHECKING:
    from playwright.sync_api import Page

CARDIOLOGY = "6955b9000100000000000001"
CARDIOLOGIST = "6955b9000200000000000001"  # head of Cardiology (README)
PATIENT = "6955b9000600000000000001"


def open_department(page: Page, server: Server, department: str) -> None:
    """Signs in as the admin (tied to no department) and picks ``department``."""
    page.goto(f"{server.url}/dashboard")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("demo-admin-pass")
    page.get_by_role("button", name="Sign in").click()
    page.locator(f"#department option[value='{department}']").wait_for(state="attached")
    page.locator("#department").select_option(department)
    page.locator(f"#board[data-loaded='{department}']").wait_for()  # read, and subscribed


def test_the_dashboard_shows_an_equipment_change_made_through_the_api_within_a_second(
    page: Page, shms: Server, network: Network
) -> None:
    from playwright.sync_api import expect

    admin = sign_in(shms, "admin")
    board = graphql(
        shms,
        admin,
        "query($d: ID!) { departmentEquipmentStatus(departmentId: $d) { id name status } }",
        d=CARDIOLOGY,
    )["departmentEquipmentStatus"]
    open_department(page, shms, CARDIOLOGY)
    rows = page.locator("#equipment tbody tr")
    expect(rows).to_have_count(len(board))
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#appointment-count")).to_have_text(re.compile(r"\(\d+\)"))

    device = board[0]["id"]
    row = page.locator(f"#equipment tr[data-equipment-id='{device}']")
    expect(row).to_have_attribute("data-status", board[0]["status"])
    target = graphql(
        shms, admin, "query($id: ID!) { equipment(id: $id) { allowedTransitions } }", id=device
    )["equipment"]["allowedTransitions"][0]
    graphql(
        shms,
        admin,
        "mutation($id: ID!, $s: EquipmentStatus!) {"
        ' updateEquipmentStatus(id: $id, status: $s, reason: "browser test") { status } }',
        id=device,
        s=target,
    )

    expect(row).to_have_attribute("data-status", target, timeout=1_000)
    expect(row.locator(".status")).to_have_text(target.replace("_", " ").lower())
    expect(page.locator("#changes li").first).to_contain_text(board[0]["name"])
    assert network.blocked == [], "the dashboard needed other hosts: static/vendor is incomplete"


def test_the_dashboard_shows_todays_bookings_and_their_changes_live(
    page: Page, shms: Server, network: Network
) -> None:
    """The browser's day is put on a future Monday (the demo's own days pass with the calendar):
    a booking made then for that day appears, and its cancellation shows."""
    from playwright.sync_api import expect

    day = datetime(2031, 3, 3, tzinfo=UTC)  # a Monday, far enough ahead never to be past
    page.clock.set_system_time(day + timedelta(hours=7))
    admin = sign_in(shms, "admin")
    open_department(page, shms, CARDIOLOGY)
    expect(page.locator("#appointment-count")).to_have_text("(0)")

    booked = graphql(
        shms,
        admin,
        "mutation($input: ScheduleAppointmentInput!) { scheduleAppointment(input: $input) { id } }",
        input={
            "patientId": PATIENT,
            "doctorId": CARDIOLOGIST,
            "startAt": (day + timedelta(hours=10)).isoformat(),
            "endAt": (day + timedelta(hours=10, minutes=30)).isoformat(),
            "reason": "Browser test",
        },
    )["scheduleAppointment"]["id"]
    row = page.locator(f"#appointments tr[data-appointment-id='{booked}']")
    expect(row).to_have_attribute("data-status", "SCHEDULED")
    expect(row).to_contain_text("Browser test")
    expect(page.locator("#appointment-count")).to_have_text("(1)")

    graphql(
        shms,
        admin,
        'mutation($id: ID!) { cancelAppointment(id: $id, reason: "browser test") { id } }',
        id=booked,
    )
    expect(row).to_have_attribute("data-status", "CANCELLED")
    assert network.blocked == []
