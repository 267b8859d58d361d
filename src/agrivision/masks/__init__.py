"""Cloud, shadow, snow, water and nodata masks; valid and cloud fractions.

- :mod:`~agrivision.masks.quality`: decode the quality bands products ship (SCL, QA_PIXEL,
  Fmask, cloud probability, cloud mask) into categories, and apply them.
- :mod:`~agrivision.masks.auto`: ``masks: auto``, the quality band if any, else the cloud
  detector the sensor profile declares (:mod:`~agrivision.masks.clouds`: s2cloudless or a
  spectral test) with shadows projected along the sun (:mod:`~agrivision.masks.shadows`,
  :mod:`~agrivision.masks.sun`).
"""

from agrivision.masks.auto import (
    MASK_INPUTS,
    METHODS,
    CloudMaskWarning,
    detect,
    mask_config,
    mask_scene,
)
from agrivision.masks.quality import (
    AUTO_CLASSES,
    DEFAULT_EXCLUDE,
    FMASK_CLASSES,
    QA_PIXEL_BITS,
    SCL_CLASSES,
    MaskConfig,
    apply_mask,
    categories,
    cloud_fraction,
    reflectance_bands,
    valid_fraction,
    valid_mask,
)
from agrivision.sensors import MASK_VARIABLES, PRODUCT_MASKS

__all__ = [
    "AUTO_CLASSES",
    "DEFAULT_EXCLUDE",
    "FMASK_CLASSES",
    "MASK_INPUTS",
    "MASK_VARIABLES",
    "METHODS",
    "PRODUCT_MASKS",
    "QA_PIXEL_BITS",
    "SCL_CLASSES",
    "CloudMaskWarning",
    "MaskConfig",
    "apply_mask",
    "categories",
    "cloud_fraction",
    "detect",
    "mask_config",
    "mask_scene",
    "reflectance_bands",
    "valid_fraction",
    "valid_mask",
]
