"""Anatomical joint limits, expressed in per-joint frames built from the rest hand.

MANO's parent-relative rotations live in the rest-model frame, whose axes mean
nothing anatomically (and differ between MANO and the open model, and between
right and left).  So for every non-root joint we build a frame from the rest
geometry itself:

* twist axis ``d``: along the bone from the joint to its child (to the tip for
  the last joint of a finger);
* flexion axis ``a = d x n`` with ``n`` the palm normal (pointing out of the
  palm): a positive rotation about ``a`` turns ``d`` towards the palm, so
  flexion is positive for both hands (the left hand's mirrored ``n`` takes
  care of the mirror);
* abduction axis ``b = a x d``.

A rotation vector ``r`` (radians, rest frame) is then ``(r.a, r.b, r.d)`` =
(flexion, abduction, twist), and the limits below are boxes in that space.
The ranges are generous versions of published active ranges of motion; their
job is to forbid what a hand cannot do (bending backwards, twisting a finger
about its own axis, sideways bends at PIP/DIP), not to hold poses near the mean.
"""
from __future__ import annotations

import numpy as np

from lagc_hand_blender.core.skeleton import MANO_PARENTS, NUM_JOINTS

# Public indices used for the palm.
_WRIST, _INDEX_MCP, _PINKY_MCP = 0, 5, 17
#: MANO-21 index (16 joints + 5 tips) of each joint's child along its finger.
_CHILD = np.array([-1, 2, 3, 17, 5, 6, 18, 8, 9, 20, 11, 12, 19, 14, 15, 16])

_D = np.deg2rad
#: (lo, hi) degrees of (flexion, abduction, twist) per joint type.
FINGER_LIMITS_DEG = {
    "mcp": ((-30, 95), (-25, 25), (-12, 12)),
    "pip": ((-8, 115), (-6, 6), (-6, 6)),
    "dip": ((-15, 95), (-6, 6), (-6, 6)),
}
THUMB_LIMITS_DEG = {
    "cmc": ((-45, 70), (-45, 45), (-45, 45)),
    "mcp": ((-25, 80), (-20, 20), (-20, 20)),
    "ip": ((-25, 95), (-10, 10), (-10, 10)),
}
_TYPES = [None, "mcp", "pip", "dip", "mcp", "pip", "dip", "mcp", "pip", "dip", "mcp", "pip", "dip", "cmc", "mcp", "ip"]


def joint_limit_boxes() -> tuple[np.ndarray, np.ndarray]:
    """(lo (15, 3), hi (15, 3)) radians for joints 1..15, (flex, abd, twist)."""
    lo = np.zeros((NUM_JOINTS - 1, 3))
    hi = np.zeros((NUM_JOINTS - 1, 3))
    for j in range(1, NUM_JOINTS):
        table = THUMB_LIMITS_DEG if j >= 13 else FINGER_LIMITS_DEG
        for k, (a, b) in enumerate(table[_TYPES[j]]):
            lo[j - 1, k], hi[j - 1, k] = _D(a), _D(b)
    return lo, hi


def anatomical_frames(rest_keypoints_mano21: np.ndarray, side: str) -> np.ndarray:
    """Per-joint anatomical frames for joints 1..15.

    rest_keypoints_mano21: (21, 3) rest joints + tips in MANO-21 order, model frame.
    side: ``"right"`` or ``"left"``.
    Returns (15, 3, 3): rows are the unit (flexion, abduction, twist) axes in the
    model frame, so ``frames @ rotvec`` gives the anatomical components.
    """
    k = np.asarray(rest_keypoints_mano21, np.float64)
    wrist, index_mcp, pinky_mcp = k[0], k[1], k[7]  # MANO order: 1 = index1, 7 = pinky1
    n = np.cross(index_mcp - wrist, pinky_mcp - wrist)
    n /= np.linalg.norm(n)
    if side == "left":
        n = -n  # the mirrored hand's cross product points out of the back
    frames = np.zeros((NUM_JOINTS - 1, 3, 3))
    for j in range(1, NUM_JOINTS):
        d = k[_CHILD[j]] - k[j]
        d /= np.linalg.norm(d)
        a = np.cross(d, n)
        if np.linalg.norm(a) < 1e-6:  # bone along the palm normal (never for sane models)
            a = np.cross(d, [1.0, 0.0, 0.0])
        a /= np.linalg.norm(a)
        b = np.cross(a, d)
        frames[j - 1] = np.stack([a, b, d])
    assert MANO_PARENTS.shape[0] == NUM_JOINTS
    return frames
