"""Pinhole intrinsics from what the user knows about the camera.

Square pixels, principal point at the image centre (``(W/2, H/2)`` in the
pixel convention where the origin is the top-left corner of the top-left pixel).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from lagc_hand.errors import InputError

#: Horizontal field of view assumed when the user gives neither a focal length
#: nor a FOV: 60 degrees is typical of webcams and sits between phone main
#: cameras (~65-70 deg, 26 mm equivalent) and narrower camcorder framings.
#: Errors in it scale the depth of both hands together, so their relative
#: placement stays right in the image plane.
DEFAULT_HFOV_DEG = 60.0
#: Width of the 35 mm film frame that "35 mm-equivalent focal length" refers to.
SENSOR_WIDTH_MM = 36.0


def intrinsics_matrix(
    width: int,
    height: int,
    focal_mm: Optional[float] = None,
    fov_deg: Optional[float] = None,
) -> np.ndarray:
    """(3, 3) float64 K in pixels.

    focal_mm: 35 mm-equivalent focal length (36 mm sensor width), wins over fov_deg.
    fov_deg:  horizontal field of view in degrees.
    Neither: :data:`DEFAULT_HFOV_DEG`.
    """
    if width <= 0 or height <= 0:
        raise InputError(f"image size {width}x{height} is not positive")
    if focal_mm is not None:
        if not (math.isfinite(focal_mm) and 1.0 <= focal_mm <= 2000.0):
            raise InputError(f"focal length {focal_mm} mm is out of range (1 to 2000 mm, 35 mm equivalent)")
        f = focal_mm / SENSOR_WIDTH_MM * width
    else:
        fov = DEFAULT_HFOV_DEG if fov_deg is None else float(fov_deg)
        if not (math.isfinite(fov) and 1.0 <= fov <= 170.0):
            raise InputError(f"field of view {fov} degrees is out of range (1 to 170)")
        f = 0.5 * width / math.tan(math.radians(fov) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64)


def horizontal_fov_deg(K: np.ndarray, width: int) -> float:
    return math.degrees(2.0 * math.atan(0.5 * width / float(K[0, 0])))
