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


def pose_from_angles(joints: np.ndarray, side: str, flex: np.ndarray, spread: np.ndarray | None = None,
                     opposition: float | np.ndarray = 0.0) -> np.ndarray:
    """``(..., 45)`` hand pose from anatomical angles (radians), batched.

    ``joints`` ``(16, 3)`` rest joints, model frame; ``flex`` ``(..., 5, 3)``
    per finger (thumb, index, middle, ring, pinky) and joint (base to end);
    ``spread`` ``(..., 5)`` base-joint abduction towards the thumb;
    ``opposition`` ``(...)`` thumb swing in front of the palm."""
    flex = np.asarray(flex, dtype=np.float64)
    lead = flex.shape[:-2]
    flex = flex.reshape(-1, 5, 3)
    n_batch = flex.shape[0]
    spread = np.zeros((n_batch, 5)) if spread is None else np.broadcast_to(
        np.asarray(spread, dtype=np.float64), lead + (5,)).reshape(-1, 5)
    opp = np.broadcast_to(np.asarray(opposition, dtype=np.float64), lead).reshape(-1)
    sgn = 1.0 if side == "right" else -1.0
    n = palm_normal(joints, side)
    d_index = _unit(joints[1] - joints[0])
    out = np.zeros((n_batch, 16, 3))
    for f, ids in enumerate(FINGER_JOINT_IDS):
        d = _unit(joints[ids[1]] - joints[ids[0]])
        k = _unit(np.cross(d, n))
        base = Rotation.from_rotvec(-sgn * n[None] * spread[:, f:f + 1]) * Rotation.from_rotvec(k[None] * flex[:, f, 0:1])
        if f == 0:
            base = Rotation.from_rotvec(-sgn * d_index[None] * opp[:, None]) * base
        out[:, ids[0]] = base.as_rotvec()
        out[:, ids[1]] = k[None] * flex[:, f, 1:2]
        out[:, ids[2]] = k[None] * flex[:, f, 2:3]
    return out[:, 1:].reshape(lead + (45,))


def relaxed_angles() -> tuple[np.ndarray, np.ndarray, float]:
    flex = np.array([[0.10, 0.20, 0.20], [0.20, 0.30, 0.15], [0.25, 0.35, 0.18],
                     [0.30, 0.40, 0.20], [0.35, 0.45, 0.22]])
    return flex, np.array([0.0, 0.03, 0.0, -0.03, -0.06]), 0.25


def fist_angles() -> tuple[np.ndarray, np.ndarray, float]:
    flex = np.array([[0.30, 0.75, 0.95], [1.45, 1.75, 0.95], [1.50, 1.75, 0.95],
                     [1.50, 1.75, 0.95], [1.50, 1.70, 0.95]])
    return flex, np.array([0.0, -0.10, 0.0, 0.06, 0.14]), 0.85


def relaxed_pose(joints: np.ndarray, side: str) -> np.ndarray:
    """A relaxed, slightly curled hand ``(45,)``."""
    return pose_from_angles(joints, side, *relaxed_angles())


def fist_pose(joints: np.ndarray, side: str) -> np.ndarray:
    """A closed fist ``(45,)``."""
    return pose_from_angles(joints, side, *fist_angles())
