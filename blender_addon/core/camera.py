"""The pinhole camera, in one place: intrinsics from what the user knows, the
field of view, and the Blender camera that reproduces a ``K`` exactly.

Numpy and the standard library only (it runs inside Blender and in the backend).

Conventions
-----------
``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels, projecting camera-frame
points (OpenCV: x right, y down, z forward, metres) to image coordinates whose
origin is the **top-left corner of the top-left pixel** (the HandMotion
convention): a centred principal point is ``(W/2, H/2)`` and pixel ``(i, j)``
covers ``[i, i+1) x [j, j+1)``.  OpenCV's calibration puts the origin at the
*centre* of the top-left pixel; :func:`opencv_to_corner` converts.

Blender
-------
Blender's perspective view plane (``BKE_camera_params_compute_viewplane``): with
``sensor_fit='HORIZONTAL'`` the sensor width spans the render width, so
``fx = lens * W / sensor_width``; ``shift_x`` / ``shift_y`` move the view plane
in units of the *fitted* dimension, which is the width here (with the default
``AUTO`` fit it would be the larger of width and height, so a fixed horizontal
fit keeps one unit for portrait and landscape alike); a render pixel is
``pixel_aspect_y / pixel_aspect_x`` times as tall as wide, which is how
``fx != fy`` is reproduced.  Image y runs down, Blender's shift_y up.  Checked
against real renders in ``tests/test_camera_render.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

#: Width of the 35 mm film frame that "35 mm-equivalent focal length" refers to,
#: and the sensor width of every Blender camera the project creates.
SENSOR_WIDTH_MM = 36.0
#: Horizontal field of view assumed when the user gives no camera at all: 60
#: degrees is typical of webcams and sits between phone main cameras (~65-70
#: deg, 26 mm equivalent) and narrower camcorder framings.  Errors in it scale
#: the depth of both hands together, so their relative placement stays right
#: in the image plane.
DEFAULT_HFOV_DEG = 60.0


class CameraError(ValueError):
    """Intrinsics that no pinhole camera (or no Blender camera) can have."""


def pinhole(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(3, 3) float64 K from its four numbers (pixels)."""
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)
    check_intrinsics(K)
    return K


def check_intrinsics(K: np.ndarray) -> np.ndarray:
    """``K`` as a (3, 3) float64 array; raises :class:`CameraError` unless it is a
    finite zero-skew pinhole matrix with positive focal lengths."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise CameraError(f"the camera matrix must be a finite 3x3 matrix, got shape {K.shape}")
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise CameraError(f"focal lengths fx={K[0, 0]:g}, fy={K[1, 1]:g} px must be positive")
    if K[0, 1] != 0 or K[1, 0] != 0 or np.any(K[2] != [0.0, 0.0, 1.0]):
        raise CameraError("the camera matrix must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew)")
    return K


def fov_to_focal_px(width: int, hfov_deg: float) -> float:
    """Focal length in pixels of a camera whose image ``width`` spans ``hfov_deg``."""
    return 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)


def focal_mm_to_px(width: int, focal_mm: float) -> float:
    """35 mm-equivalent focal length -> pixels (the sensor width spans the image width)."""
    return focal_mm / SENSOR_WIDTH_MM * width


def centred_intrinsics(width: int, height: int, focal_px: float) -> np.ndarray:
    """Square pixels, principal point at the image centre ``(W/2, H/2)``."""
    return pinhole(focal_px, focal_px, width / 2.0, height / 2.0)


def horizontal_fov_deg(K: np.ndarray, width: int) -> float:
    """Field of view across the image width (degrees), from ``fx``; the principal
    point does not enter (it shifts the view, not its width)."""
    return math.degrees(2.0 * math.atan(0.5 * width / float(np.asarray(K)[0, 0])))


def project(K: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` camera-frame points -> ``(..., 2)`` pixels."""
    p = np.asarray(points, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    return np.stack([K[0, 0] * p[..., 0] / p[..., 2] + K[0, 2],
                     K[1, 1] * p[..., 1] / p[..., 2] + K[1, 2]], axis=-1)


def opencv_to_corner(K: np.ndarray) -> np.ndarray:
    """K from OpenCV's pixel convention (origin at the centre of the top-left pixel)
    -> the HandMotion convention (origin at its top-left corner): ``c += 0.5``."""
    out = np.array(K, dtype=np.float64)
    out[0, 2] += 0.5
    out[1, 2] += 0.5
    return out


def corner_to_opencv(K: np.ndarray) -> np.ndarray:
    """Inverse of :func:`opencv_to_corner`."""
    out = np.array(K, dtype=np.float64)
    out[0, 2] -= 0.5
    out[1, 2] -= 0.5
    return out


@dataclass
class CameraParams:
    """Blender camera and render settings equivalent to a pinhole ``K``.

    lens_mm with ``sensor_width_mm`` and ``sensor_fit='HORIZONTAL'``; shift_x /
    shift_y in units of the image width; resolution (W, H) pixels;
    pixel_aspect_x / pixel_aspect_y reproduce ``fx != fy`` (both 1 for square pixels).
    """

    lens_mm: float
    sensor_width_mm: float
    shift_x: float
    shift_y: float
    resolution: tuple[int, int]
    pixel_aspect_x: float
    pixel_aspect_y: float
    sensor_fit: str = "HORIZONTAL"

    def camera_data_settings(self) -> dict:
        """Attribute -> value for a ``bpy.types.Camera``."""
        return {"type": "PERSP", "sensor_fit": self.sensor_fit, "sensor_width": self.sensor_width_mm,
                "lens": self.lens_mm, "shift_x": self.shift_x, "shift_y": self.shift_y}

    def render_settings(self) -> dict:
        """Attribute -> value for ``scene.render``."""
        return {"resolution_x": self.resolution[0], "resolution_y": self.resolution[1],
                "resolution_percentage": 100, "pixel_aspect_x": self.pixel_aspect_x,
                "pixel_aspect_y": self.pixel_aspect_y}


#: Blender clamps ``pixel_aspect_x/y`` to [1, 200].
_MAX_PIXEL_ASPECT = 200.0


def camera_params(intrinsics: np.ndarray, image_size: tuple[int, int],
                  sensor_width_mm: float = SENSOR_WIDTH_MM) -> CameraParams:
    """Pinhole ``K`` (HandMotion pixel convention) and ``(width, height)`` -> Blender settings.

    The principal point's offset from the image centre becomes a lens shift: a
    principal point left of centre (``cx < W/2``) means the view is shifted right,
    i.e. positive ``shift_x``; below the centre (``cy > H/2``) a positive ``shift_y``.
    """
    K = check_intrinsics(intrinsics)
    w, h = int(image_size[0]), int(image_size[1])
    if w <= 0 or h <= 0:
        raise CameraError(f"image size {w}x{h} is not positive")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    # A pixel is ycor = pixel_aspect_y / pixel_aspect_x times as tall as wide, so fy = fx / ycor;
    # Blender wants both aspects >= 1.
    ycor = fx / fy
    pax, pay = (1.0, ycor) if ycor >= 1.0 else (1.0 / ycor, 1.0)
    if max(pax, pay) > _MAX_PIXEL_ASPECT:
        raise CameraError(f"fx/fy = {ycor:g} is beyond what a Blender camera can show")
    return CameraParams(
        lens_mm=float(fx * sensor_width_mm / w),
        sensor_width_mm=float(sensor_width_mm),
        shift_x=float((w / 2.0 - cx) / w),
        # The view plane's y unit is a pixel height (ycor widths); shifts count widths.
        shift_y=float((cy - h / 2.0) * ycor / w),
        resolution=(w, h),
        pixel_aspect_x=float(pax),
        pixel_aspect_y=float(pay),
    )


def intrinsics_from_camera(params: CameraParams) -> np.ndarray:
    """Inverse of :func:`camera_params` (for a horizontal sensor fit): the ``K`` a
    Blender camera with these settings projects with."""
    if params.sensor_fit != "HORIZONTAL":
        raise CameraError(f"only sensor_fit='HORIZONTAL' is supported, not {params.sensor_fit!r}")
    w, h = params.resolution
    ycor = params.pixel_aspect_y / params.pixel_aspect_x
    fx = params.lens_mm * w / params.sensor_width_mm
    return pinhole(fx, fx / ycor, w / 2.0 - params.shift_x * w, h / 2.0 + params.shift_y * w / ycor)


def intrinsics_for(width: int, height: int, focal_mm: Optional[float] = None,
                   fov_deg: Optional[float] = None) -> np.ndarray:
    """Centred square-pixel K from a 35 mm-equivalent focal length (wins) or a
    horizontal field of view; neither gives :data:`DEFAULT_HFOV_DEG`."""
    if focal_mm is not None:
        return centred_intrinsics(width, height, focal_mm_to_px(width, focal_mm))
    return centred_intrinsics(width, height, fov_to_focal_px(width, DEFAULT_HFOV_DEG if fov_deg is None else fov_deg))
