"""The default pixel minimum, checked against the sampling error it is meant to bound."""

from __future__ import annotations

import numpy as np

from agrivision.fields.config import ProblemsConfig
from agrivision.health.anomaly import MAD_TO_SIGMA


def false_anomaly_rate(n: int, fields: int = 20_000, z: float = -3.0) -> float:
    """Share of pixels of uniform (normal) fields of ``n`` pixels with robust z below ``z``."""
    x = np.random.default_rng(0).standard_normal((fields, n))
    median = np.median(x, axis=1, keepdims=True)
    scale = MAD_TO_SIGMA * np.median(np.abs(x - median), axis=1, keepdims=True)
    return float(((x - median) / scale < z).mean())


def test_the_default_minimum_keeps_false_anomalies_below_the_hotspot_share():
    config = ProblemsConfig()
    exact = 0.00135  # P(Z < -3) with the true median and scale
    at_default = false_anomaly_rate(config.min_pixels)
    assert exact < at_default < 0.006 < config.hotspot_pct / 100
    # a 0.1 ha parcel at 10 m (10 pixels) would flag more than the hotspot share by chance
    assert false_anomaly_rate(10) > config.hotspot_pct / 100
