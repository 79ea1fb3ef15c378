"""Placement: each hand's root in the camera frame, and the camera intrinsics.

See :mod:`.intrinsics` (the camera from a focal length, a field of view, intrinsics,
a calibration file or the default; undistortion of the detected keypoints)
and :mod:`.pnp` (translation-only PnP from metric 3D + 2D keypoints).
"""
from lagc_hand.placement.intrinsics import (DEFAULT_HFOV_DEG, SENSOR_WIDTH_MM, CameraModel, intrinsics_matrix,
                                            load_calibration, resolve_camera, undistort_keypoints)
from lagc_hand.placement.pnp import Placement, place_hand, solve_translation

__all__ = ["DEFAULT_HFOV_DEG", "SENSOR_WIDTH_MM", "CameraModel", "intrinsics_matrix", "load_calibration",
           "resolve_camera", "undistort_keypoints", "Placement", "place_hand", "solve_translation"]
