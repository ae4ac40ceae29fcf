"""doctorsNear: a bounding box in the database, the exact distance in code, nearest first."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bson import ObjectId

from demo.facility import CITY_CENTRE, PRACTICE_RADIUS_KM, doctor_location
from models import Doctor
from services.proximity import (
    EARTH_RADIUS_KM,
    MAX_RESULTS,
    bounding_box,
    haversine_km,
)
from tests import factories
from tests.graphql.helpers import code

NEAR = """query($lat: Float!, $lon: Float!, $r: Float!, $specialty: String) {
  doctorsNear(latitude: $lat, longitude: $lon, radiusKm: $r, specialty: $specialty) {
    distanceKm doctor { id lastName specialty location { latitude longitude } } } }"""
ONE_DEGREE_KM = 111.19508  # pi * 6371.0088 / 180: one degree of a great circle


async def near(client: Any, lat: float, lon: float, r: float, **extra: Any) -> list[Any]:
    data = await client.data(NEAR, lat=lat, lon=lon, r=r, **extra)
    result: list[Any] = data["doctorsNear"]
    return result


async def at(lat: float, lon: float, **fields: Any) -> Doctor:
    return await factories.doctor(location={"latitude": lat, "longitude": lon}, **fields)


# -- distances -----------------------------------------------------------------------------------


def test_haversine_matches_hand_computed_distances() -> None:
    assert haversine_km(0, 0, 1, 0) == pytest.approx(ONE_DEGREE_KM, abs=1e-4)
    assert haversine_km(45, 7, 46, 7) == pytest.approx(ONE_DEGREE_KM, abs=1e-4)
    assert haversine_km(0, 0, 0, 1) == pytest.approx(ONE_DEGREE_KM, abs=1e-4)  # on the equator
    # Quarter of the globe: equator to pole.
    assert haversine_km(0, 0, 90, 0) == pytest.approx(math.pi * EARTH_RADIUS_KM / 2)
    # Across the antimeridian: 0.2 degrees of longitude at the equator, not 359.8.
    assert haversine_km(0, 179.9, 0, -179.9) == pytest.approx(0.2 * ONE_DEGREE_KM, abs=1e-4)
    assert haversine_km(12.5, -3.25, 12.5, -3.25) == 0


def test_the_box_widens_in_longitude_away_from_the_equator() -> None:
    equator = bounding_box(0, 0, 100)
    north = bounding_box(60, 0, 100)
    (w0, e0), (w60, e60) = equator.lon_ranges[0], north.lon_ranges[0]
    assert e0 == pytest.approx(100 / ONE_DEGREE_KM, rel=1e-4)
    assert e60 - w60 == pytest.approx(2 * (e0 - w0), rel=0.01)  # cos(60°) = 1/2
    assert north.max_lat - north.min_lat == pytest.approx(equator.max_lat - equator.min_lat)


def test_the_box_splits_at_the_antimeridian_and_opens_at_the_poles() -> None:
    east = bounding_box(0, 179.5, 100)
    assert len(east.lon_ranges) == 2
    assert east.lon_ranges[0][1] == 180 and east.lon_ranges[1][0] == -180
    pole = bounding_box(89.5, 10, 100)
    assert pole.max_lat == 90 and pole.lon_ranges == ((-180.0, 180.0),)
    south = bounding_box(-90, 0, 1)
    assert south.min_lat == -90 and south.lon_ranges == ((-180.0, 180.0),)


# -- the query -----------------------------------------------------------------------------------


async def test_nearest_first_with_distances(gql: Any) -> None:
    far = await at(1, 0)
    close = await at(0, 0.5)
    here = await at(0, 0)
    await at(3, 0)  # beyond the radius
    found = await near(gql, 0, 0, 150)
    assert [d["doctor"]["id"] for d in found] == [str(here.id), str(close.id), str(far.id)]
    distances = [d["distanceKm"] for d in found]
    assert distances == pytest.approx([0, ONE_DEGREE_KM / 2, ONE_DEGREE_KM], abs=1e-3)
    assert found[2]["doctor"]["location"] == {"latitude": 1.0, "longitude": 0.0}


async def test_the_radius_is_inclusive_and_exact(gql: Any) -> None:
    doctor = await at(1, 0)
    assert await near(gql, 0, 0, 111.19) == []
    assert await near(gql, 0, 0, 111.1950) == []
    assert [d["doctor"]["id"] for d in await near(gql, 0, 0, 111.1951)] == [str(doctor.id)]


async def test_a_corner_of_the_box_is_not_inside_the_circle(gql: Any) -> None:
    await at(0.7, 0.7)  # inside the 100 km box, ~110 km away diagonally
    assert bounding_box(0, 0, 100).max_lat > 0.7
    assert await near(gql, 0, 0, 100) == []
    assert len(await near(gql, 0, 0, 111)) == 1


async def test_longitude_is_scaled_by_latitude(gql: Any) -> None:
    # At 60°N a degree of longitude is about half as long: 2R·asin(cos 60°·sin 0.5°) ≈ 55.60 km.
    doctor = await at(60, 1)
    (found,) = await near(gql, 60, 0, 60)
    assert found["doctor"]["id"] == str(doctor.id)
    assert found["distanceKm"] == pytest.approx(55.597, abs=1e-3)


async def test_specialty_matches_whole_values_in_any_case(gql: Any) -> None:
    heart = await at(0, 0.1, specialty="Cardiology")
    await at(0, 0.2, specialty="Paediatric Cardiology")
    await at(0, 0.3, specialty="Dermatology")
    for wanted in ("cardiology", "CARDIOLOGY", " Cardiology "):
        found = await near(gql, 0, 0, 50, specialty=wanted)
        assert [d["doctor"]["id"] for d in found] == [str(heart.id)], wanted
    assert len(await near(gql, 0, 0, 50)) == 3
    assert await near(gql, 0, 0, 50, specialty="cardio.*") == []


async def test_doctors_without_a_location_or_inactive_are_left_out(gql: Any) -> None:
    await factories.doctor()
    await at(0, 0.1, active=False)
    active = await at(0, 0.2)
    assert [d["doctor"]["id"] for d in await near(gql, 0, 0, 50)] == [str(active.id)]


async def test_results_are_capped(gql: Any) -> None:
    for i in range(MAX_RESULTS + 3):
        await at(0, i / 1000)
    found = await near(gql, 0, 0, 10)
    assert len(found) == MAX_RESULTS
    assert found[-1]["distanceKm"] == pytest.approx((MAX_RESULTS - 1) / 1000 * ONE_DEGREE_KM)


@pytest.mark.parametrize(
    ("center", "doctor_at"),
    [
        ((10, 179.9), (10, -179.95)),  # east of the antimeridian, found from the west
        ((10, -180), (10, 179.9)),
        ((-5, 180), (-5, -179.8)),
        ((90, 0), (89.5, 123)),  # the north pole itself
        ((-89.8, 40), (-89.8, -140)),  # across the south pole
    ],
)
async def test_antimeridian_and_poles(
    gql: Any, center: tuple[float, float], doctor_at: tuple[float, float]
) -> None:
    doctor = await at(*doctor_at)
    await at(0, 0)  # far away everywhere here
    expected = haversine_km(*center, *doctor_at)
    assert expected < 60
    (found,) = await near(gql, center[0], center[1], 60)
    assert found["doctor"]["id"] == str(doctor.id)
    assert found["distanceKm"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("lat", "lon", "radius", "field"),
    [
        (90.5, 0, 10, "latitude"),
        (-91, 0, 10, "latitude"),
        (0, 180.01, 10, "longitude"),
        (0, -200, 10, "longitude"),
        (0, 0, 0, "radiusKm"),
        (0, 0, -5, "radiusKm"),
        (0, 0, 200.5, "radiusKm"),
    ],
)
async def test_bad_input(gql: Any, lat: float, lon: float, radius: float, field: str) -> None:
    error = await gql.error(NEAR, lat=lat, lon=lon, r=radius)
    assert code(error) == "BAD_USER_INPUT"
    assert field in error["extensions"]["fields"]


async def test_any_role_that_reads_doctors_may_search_anonymous_may_not(
    gql: Any, client_as: Any, http: Any
) -> None:
    doctor = await at(0, 0)
    for role in ("patient", "analyst", "billing", "service"):
        found = await near(client_as(roles=[role], pid=str(ObjectId())), 0, 0, 5)
        assert [d["doctor"]["id"] for d in found] == [str(doctor.id)], role
    response = await http.post(
        "/graphql", json={"query": NEAR, "variables": {"lat": 0, "lon": 0, "r": 5}}
    )
    assert code(response.json()["errors"][0]) == "UNAUTHENTICATED"


# -- storing a location --------------------------------------------------------------------------

CREATE = """mutation($input: CreateDoctorInput!) {
  createDoctor(input: $input) { id location { latitude longitude } } }"""
UPDATE = """mutation($id: ID!, $input: UpdateDoctorInput!) {
  updateDoctor(id: $id, input: $input) { id location { latitude longitude } } }"""


async def test_location_is_stored_validated_and_cleared(gql: Any) -> None:
    dept = await factories.department()
    base = {
        "firstName": "Lise",
        "lastName": "Meitner",
        "departmentId": str(dept.id),
        "specialty": "Radiology",
        "licenceNumber": "LIC-GEO-1",
    }
    bad = await gql.error(CREATE, input={**base, "location": {"latitude": 95, "longitude": 0}})
    assert code(bad) == "BAD_USER_INPUT"
    assert "location.latitude" in bad["extensions"]["fields"]
    assert await Doctor.find_one({"licence_number": "LIC-GEO-1"}) is None

    point = {"latitude": 52.52, "longitude": 13.405}
    created = (await gql.data(CREATE, input={**base, "location": point}))["createDoctor"]
    assert created["location"] == point
    assert [d["doctor"]["id"] for d in await near(gql, 52.5, 13.4, 5)] == [created["id"]]

    bad = await gql.error(
        UPDATE, id=created["id"], input={"location": {"latitude": 0, "longitude": 181}}
    )
    assert code(bad) == "BAD_USER_INPUT"
    assert "location.longitude" in bad["extensions"]["fields"]

    cleared = (await gql.data(UPDATE, id=created["id"], input={"location": None}))["updateDoctor"]
    assert cleared["location"] is None
    assert await near(gql, 52.5, 13.4, 5) == []


def test_demo_doctors_practise_around_the_city_deterministically() -> None:
    points = [doctor_location(n) for n in range(1, 40)]
    assert points == [doctor_location(n) for n in range(1, 40)]
    assert len({(p.latitude, p.longitude) for p in points}) == len(points)
    for p in points:
        distance = haversine_km(
            CITY_CENTRE.latitude, CITY_CENTRE.longitude, p.latitude, p.longitude
        )
        assert distance <= PRACTICE_RADIUS_KM + 0.01
