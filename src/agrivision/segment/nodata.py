"""The nodata code of class and probability rasters, also the ignored label value.

In a module of its own, without PyTorch, so that reports can read a model's rasters on a
core install (no ``segment`` extra).
"""

NODATA = 255
