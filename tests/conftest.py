"""Shared fixtures; raster helpers live in ``tests/rasters.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasters import SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    """The real imagery beside the checkout; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA
