"""Exception hierarchy: every user-facing problem is an :class:`AgrivisionError`.

Messages name the file (or object), the problem and the fix, in one line, so that the CLI can
print them as they are and exit with code 2.
"""

from __future__ import annotations

from os import PathLike


class AgrivisionError(Exception):
    """Base class of all errors caused by input, configuration or environment (not bugs)."""

    def __init__(self, problem: str, *, source: str | PathLike | None = None, fix: str = ""):
        self.problem = problem
        self.source = None if source is None else str(source)
        self.fix = fix
        parts = [f"{self.source}: {problem}" if self.source else problem]
        if fix:
            parts.append(fix)
        super().__init__(" — ".join(parts))


class SourceError(AgrivisionError):
    """A raster source cannot be found, opened or understood (missing, corrupt, empty)."""


class MissingCRSError(AgrivisionError):
    """A raster or vector has no coordinate reference system and none can be assumed."""


class BandNotFoundError(AgrivisionError):
    """A band (or several) needed for an operation is not in the scene."""


class SensorError(AgrivisionError):
    """Unknown sensor profile, or a profile file that is invalid."""


class MaskError(AgrivisionError):
    """A cloud/shadow mask that cannot be made: unknown method, or bands it needs are missing."""


class SpectralIndexError(AgrivisionError):
    """Unknown spectral index, or an index that the scene cannot supply."""


class FormulaError(AgrivisionError):
    """An index formula uses anything but arithmetic, band symbols and constants."""


class GridError(AgrivisionError):
    """Sources cannot be put on one grid (rotated transforms, mixed CRS without a target...)."""


class NoOverlapError(AgrivisionError):
    """Inputs do not overlap (fields outside the scene, tiles outside the requested grid)."""


class InvalidGeometryError(AgrivisionError):
    """Field geometries that cannot be used even after repair."""


class FieldsError(AgrivisionError):
    """A fields file cannot be read or lacks what is needed (CRS, polygons, ids)."""


class ConfigError(AgrivisionError):
    """A run configuration is invalid: unknown key, wrong type, unsafe YAML."""


class CheckpointError(AgrivisionError):
    """A model checkpoint is missing, unsafe, truncated or does not fit the model."""


class OutputError(AgrivisionError):
    """An output cannot be written (exists without overwrite, unwritable directory...)."""


class ResourceLimitError(AgrivisionError):
    """An operation would materialise more pixels than the configured ceiling allows."""


class RemoteError(AgrivisionError):
    """A server (STAC API, file host) cannot be reached, or answers with an error."""
