"""Where the sun was: azimuth and elevation for an acquisition, to project cloud shadows.

Angles come from metadata when the scene has them (STAC ``view:sun_azimuth`` /
``view:sun_elevation``, kept in the scene's attrs); otherwise they are computed from the
acquisition time and the scene centre with NOAA's solar-position equations (Spencer's Fourier
series for the equation of time and the declination; about 0.5° accurate, plenty for shadows).
A date without a time of day (midnight exactly) is taken at 10:30 local solar time, the
descending-node overpass of Sentinel-2 and Landsat.
"""

from __future__ import annotations

import datetime as dt
import math

#: Local solar time (hours) assumed when only the date is known.
OVERPASS_SOLAR_HOUR = 10.5


def sun_position(when: dt.datetime, lon: float, lat: float) -> tuple[float, float]:
    """Solar azimuth and elevation for a time and place.

    Parameters
    ----------
    when
        Acquisition time in UTC (naive datetimes are taken as UTC). Exactly midnight means
        "date only": 10:30 local solar time is used.
    lon, lat
        Position in degrees (WGS 84).

    Returns
    -------
    tuple
        ``(azimuth, elevation)`` in degrees; azimuth clockwise from north (0..360).
    """
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    if when.time() == dt.time(0):
        when = when + dt.timedelta(hours=OVERPASS_SOLAR_HOUR - lon / 15.0)
    hours = when.hour + when.minute / 60 + when.second / 3600
    doy = when.timetuple().tm_yday
    g = 2 * math.pi / 365 * (doy - 1 + (hours - 12) / 24)  # fractional year, radians
    eqtime = 229.18 * (
        0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g)
    )  # fmt: skip
    decl = (
        0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g) + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g)
    )  # fmt: skip
    solar_minutes = hours * 60 + eqtime + 4 * lon
    ha = math.radians(solar_minutes / 4 - 180)
    phi = math.radians(lat)
    sin_el = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    elevation = math.degrees(math.asin(max(-1.0, min(1.0, sin_el))))
    azimuth = math.degrees(
        math.atan2(-math.sin(ha), math.tan(decl) * math.cos(phi) - math.sin(phi) * math.cos(ha))
    )
    return azimuth % 360, elevation
