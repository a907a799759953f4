"""Distances on the Earth, one formula for every service: the gateway ranks search hits by it, the live map decides
whether a vendor moved far enough to record, and the self-hosted search provider writes the same formula in SQL."""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8  # the mean Earth radius (IUGG), the same in Python and in the SQL


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))
