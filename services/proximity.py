"""Doctors near a point, without MongoDB's geo operators (mongomock has no ``$near``).

The database narrows the search with a plain range query on an indexed bounding box around the
circle; the exact great-circle (haversine) distance is then computed here, rows beyond the radius
dropped, and the rest sorted nearest first.

The box: ``radius / R`` radians of latitude either side, clamped at the poles. For longitude the
half-width is ``asin(sin(r / R) / cos(lat))``, the longitude of the meridians tangent to the
circle, which grows towards the poles; when the box reaches a pole every longitude qualifies.
A box crossing the antimeridian (±180°) is split into two longitude ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from errors import BadUserInput
from models.staff import Doctor
from services.pagination import Query, both
from services.staff import specialty_filter

EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG), in kilometres."""
MAX_RADIUS_KM = 200.0
MAX_RESULTS = 50
_PAD = 1e-9
"""Degrees added around the box so rounding never loses a point lying on the circle."""


@dataclass(frozen=True)
class DoctorDistance:
    doctor: Doctor
    distance_km: float


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points given in degrees, in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Box:
    min_lat: float
    max_lat: float
    lon_ranges: tuple[tuple[float, float], ...]
    """One range, or two when the box crosses the antimeridian."""


def bounding_box(latitude: float, longitude: float, radius_km: float) -> Box:
    """The smallest latitude/longitude box holding every point within ``radius_km``."""
    angular = radius_km / EARTH_RADIUS_KM
    dlat = math.degrees(angular)
    min_lat, max_lat = latitude - dlat - _PAD, latitude + dlat + _PAD
    if min_lat <= -90 or max_lat >= 90:  # the circle holds a pole: all longitudes
        return Box(max(min_lat, -90.0), min(max_lat, 90.0), ((-180.0, 180.0),))
    # Safe: the box misses the poles, so sin(angular) < cos(latitude).
    dlon = math.degrees(math.asin(math.sin(angular) / math.cos(math.radians(latitude)))) + _PAD
    west, east = longitude - dlon, longitude + dlon
    if west < -180:
        ranges: tuple[tuple[float, float], ...] = ((west + 360, 180.0), (-180.0, east))
    elif east > 180:
        ranges = ((west, 180.0), (-180.0, east - 360))
    else:
        ranges = ((west, east),)
    return Box(min_lat, max_lat, ranges)


def box_filter(box: Box) -> Query:
    longitudes = [
        {"location.longitude": {"$gte": west, "$lte": east}} for west, east in box.lon_ranges
    ]
    query: Query = {"location.latitude": {"$gte": box.min_lat, "$lte": box.max_lat}}
    if len(longitudes) == 1:
        query.update(longitudes[0])
    else:
        query["$or"] = longitudes
    return query


def _check(latitude: float, longitude: float, radius_km: float) -> None:
    bad: dict[str, str] = {}
    if not (math.isfinite(latitude) and -90 <= latitude <= 90):
        bad["latitude"] = "must be between -90 and 90"
    if not (math.isfinite(longitude) and -180 <= longitude <= 180):
        bad["longitude"] = "must be between -180 and 180"
    if not (math.isfinite(radius_km) and 0 < radius_km <= MAX_RADIUS_KM):
        bad["radiusKm"] = f"must be more than 0 and at most {MAX_RADIUS_KM:g} km"
    if bad:
        raise BadUserInput("Invalid input: " + "; ".join(f"{k}: {v}" for k, v in bad.items()), bad)


async def doctors_near(
    latitude: float,
    longitude: float,
    radius_km: float,
    specialty: str | None = None,
    scope: Query | None = None,
    limit: int = MAX_RESULTS,
) -> list[DoctorDistance]:
    """Active doctors within ``radius_km`` of the point, nearest first (ties by id), capped."""
    _check(latitude, longitude, radius_km)
    query = {
        **box_filter(bounding_box(latitude, longitude, radius_km)),
        **specialty_filter(specialty),
        "active": True,
    }
    found: list[DoctorDistance] = []
    for doctor in await Doctor.find(both(query, scope or {})).to_list():
        point = doctor.location
        if point is None:  # pragma: no cover - the box query needs a location
            continue
        distance = haversine_km(latitude, longitude, point.latitude, point.longitude)
        if distance <= radius_km:
            found.append(DoctorDistance(doctor, distance))
    found.sort(key=lambda d: (d.distance_km, str(d.doctor.id)))
    return found[:limit]
