"""Per-field analytics: exact zonal statistics (more modules are wired in by the lead)."""

from agrivision.fields.zonal import DEFAULT_STATS, zonal_stats

__all__ = ["DEFAULT_STATS", "zonal_stats"]
