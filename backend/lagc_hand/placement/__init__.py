"""Placement: each hand's root in the camera frame, and the camera intrinsics.

See :mod:`.intrinsics` (K from a focal length, a field of view or the default)
and :mod:`.pnp` (translation-only PnP from metric 3D + 2D keypoints).
"""
from lagc_hand.placement.intrinsics import DEFAULT_HFOV_DEG, SENSOR_WIDTH_MM, intrinsics_matrix
from lagc_hand.placement.pnp import Placement, place_hand, solve_translation

__all__ = ["DEFAULT_HFOV_DEG", "SENSOR_WIDTH_MM", "intrinsics_matrix", "Placement", "place_hand",
           "solve_translation"]
