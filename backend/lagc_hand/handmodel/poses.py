"""Named hand poses built from anatomical angles, for any MANO-tree model.

Axes come from the model's own rest joints (model frame), so the same angles
give the same gesture on the open model, on MANO and on either side:

* finger flexion turns each finger about ``cross(finger direction, palm normal)``
  (positive = curl towards the palm);
* spread turns the base joint about the palm normal (positive = towards the thumb);
* thumb opposition swings the thumb metacarpal about the index metacarpal's
  axis, from beside the palm to in front of it.

Outputs are ``(45,)`` axis-angle vectors (radians) of joints 1..15 in MANO
order, relative to the flat rest hand (``flat_hand_mean`` semantics).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from lagc_hand_blender.core.skeleton import TIP_NAMES

#: MANO joint ids of each finger (base, middle, end), public finger order.
FINGER_JOINT_IDS = np.array([[13, 14, 15], [1, 2, 3], [4, 5, 6], [10, 11, 12], [7, 8, 9]])
FINGER_NAMES = tuple(n.replace("_tip", "") for n in TIP_NAMES)  # thumb, index, middle, ring, pinky


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def palm_normal(joints: np.ndarray, side: str) -> np.ndarray:
    """Unit vector out of the palm (model frame) from the rest joints ``(16, 3)``."""
    n = np.cross(joints[1] - joints[0], joints[7] - joints[0])
    return _unit(n if side == "right" else -n)


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    return Rotation.from_rotvec(_unit(axis) * angle).as_matrix()


def pose_from_angles(joints: np.ndarray, side: str, flex: np.ndarray, spread: np.ndarray | None = None,
                     opposition: float = 0.0) -> np.ndarray:
    """``(45,)`` hand pose from anatomical angles (radians).

    ``joints`` ``(16, 3)`` rest joints, model frame; ``flex`` ``(5, 3)`` per
    finger (thumb, index, middle, ring, pinky) and joint (base to end);
    ``spread`` ``(5,)`` base-joint abduction towards the thumb; ``opposition``
    thumb swing in front of the palm."""
    flex = np.asarray(flex, dtype=np.float64).reshape(5, 3)
    spread = np.zeros(5) if spread is None else np.asarray(spread, dtype=np.float64)
    sgn = 1.0 if side == "right" else -1.0
    n = palm_normal(joints, side)
    out = np.zeros((16, 3))
    for f, ids in enumerate(FINGER_JOINT_IDS):
        child = joints[ids[1]]
        d = _unit(child - joints[ids[0]])
        k = _unit(np.cross(d, n))
        base = _rot(k, flex[f, 0])
        base = _rot(-sgn * n, spread[f]) @ base
        if f == 0:
            d_index = _unit(joints[1] - joints[0])
            base = _rot(-sgn * d_index, opposition) @ base
        out[ids[0]] = Rotation.from_matrix(base).as_rotvec()
        out[ids[1]] = k * flex[f, 1]
        out[ids[2]] = k * flex[f, 2]
    return out[1:].reshape(45)


def relaxed_angles() -> tuple[np.ndarray, np.ndarray, float]:
    flex = np.array([[0.10, 0.20, 0.20], [0.20, 0.30, 0.15], [0.25, 0.35, 0.18],
                     [0.30, 0.40, 0.20], [0.35, 0.45, 0.22]])
    return flex, np.array([0.0, 0.03, 0.0, -0.03, -0.06]), 0.25


def fist_angles() -> tuple[np.ndarray, np.ndarray, float]:
    flex = np.array([[0.35, 0.55, 0.75], [1.45, 1.75, 0.95], [1.50, 1.75, 0.95],
                     [1.50, 1.75, 0.95], [1.50, 1.70, 0.95]])
    return flex, np.array([0.0, -0.10, 0.0, 0.06, 0.14]), 0.85


def relaxed_pose(joints: np.ndarray, side: str) -> np.ndarray:
    """A relaxed, slightly curled hand ``(45,)``."""
    return pose_from_angles(joints, side, *relaxed_angles())


def fist_pose(joints: np.ndarray, side: str) -> np.ndarray:
    """A closed fist ``(45,)``."""
    return pose_from_angles(joints, side, *fist_angles())
