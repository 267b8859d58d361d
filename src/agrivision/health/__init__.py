"""Crop health: class schema, rule-based classes, within-field anomalies, management zones."""

from agrivision.health.anomaly import field_histograms, field_statistics, hotspot_share, robust_z
from agrivision.health.classes import HealthRules, class_areas, classify
from agrivision.health.schema import DEFAULT_SCHEMA, ClassSchema, HealthClass
from agrivision.health.zones import zones

__all__ = [
    "DEFAULT_SCHEMA",
    "ClassSchema",
    "HealthClass",
    "HealthRules",
    "class_areas",
    "classify",
    "field_histograms",
    "field_statistics",
    "hotspot_share",
    "robust_z",
    "zones",
]
