"""Joint orders of the hand skeleton, and the mappings between them.

Three orders are in use:

* **MANO order** (16 joints, the kinematic tree): ``0`` wrist; ``1-3`` index;
  ``4-6`` middle; ``7-9`` pinky; ``10-12`` ring; ``13-15`` thumb (each finger
  base to tip).  "MANO 21" appends the five fingertips ``16..20`` = thumb,
  index, middle, ring, pinky tip (mesh vertices, not joints).
* **Public 21-keypoint order** (MediaPipe = OpenPose = IntagHand output):
  wrist, then thumb, index, middle, ring, pinky, each base to tip.
* **InterHand2.6M order**: per hand each finger tip first (thumb, index,
  middle, ring, pinky), wrist last at 20; the right hand is 0-20 and the left
  hand 21-41 in the 42-joint arrays.

All maps are index arrays ``m`` such that ``dst = src[..., m, :]``.
"""
from __future__ import annotations

import numpy as np

NUM_JOINTS = 16
NUM_KEYPOINTS = 21

#: Names of the 16 MANO joints, in MANO order.
MANO_JOINT_NAMES = (
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
)

#: Parent of each MANO joint (-1 for the root).
MANO_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14], dtype=np.int64)

#: Names of the five fingertips, MANO-21 indices 16..20.
TIP_NAMES = ("thumb_tip", "index_tip", "middle_tip", "ring_tip", "pinky_tip")

#: MANO joint that each fingertip hangs from (thumb, index, middle, ring, pinky).
TIP_PARENTS = np.array([15, 3, 6, 12, 9], dtype=np.int64)

#: Parents of the 21 "MANO 21" points (16 joints + 5 tips).
MANO21_PARENTS = np.concatenate([MANO_PARENTS, TIP_PARENTS])

#: Fingertip vertex ids on official MANO meshes, manopth / IntagHand / InterWild
#: convention (thumb, index, middle, ring, pinky).  We use this one for MANO
#: files; smplx uses 744, 320, 443, 554, 671.
MANO_TIP_VERTEX_IDS = np.array([745, 317, 444, 556, 673], dtype=np.int64)
SMPLX_TIP_VERTEX_IDS = np.array([744, 320, 443, 554, 671], dtype=np.int64)

#: Public 21-keypoint names (MediaPipe's spelling).
PUBLIC_KEYPOINT_NAMES = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)

#: Parents in the public order (for drawing and bone lengths).
PUBLIC_PARENTS = np.array(
    [-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19], dtype=np.int64
)

#: public = mano21[MANO21_TO_PUBLIC]
MANO21_TO_PUBLIC = np.array(
    [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20], dtype=np.int64
)
#: mano21 = public[PUBLIC_TO_MANO21]
PUBLIC_TO_MANO21 = np.argsort(MANO21_TO_PUBLIC)

#: public = interhand[INTERHAND_TO_PUBLIC] (one hand, 21 joints, wrist at 20)
INTERHAND_TO_PUBLIC = np.array(
    [20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16], dtype=np.int64
)
#: interhand = public[PUBLIC_TO_INTERHAND]
PUBLIC_TO_INTERHAND = np.argsort(INTERHAND_TO_PUBLIC)

#: Public index of the middle-finger MCP, the root of the IntagHand protocol.
PUBLIC_MIDDLE_MCP = 9
PUBLIC_WRIST = 0

#: The two hands, in the order every per-hand array uses.
SIDES = ("left", "right")


def mano21_to_public(points: np.ndarray) -> np.ndarray:
    """``(..., 21, D)`` in MANO-21 order -> ``(..., 21, D)`` in public order."""
    return points[..., MANO21_TO_PUBLIC, :]


def public_to_mano21(points: np.ndarray) -> np.ndarray:
    """``(..., 21, D)`` in public order -> ``(..., 21, D)`` in MANO-21 order."""
    return points[..., PUBLIC_TO_MANO21, :]


def interhand_to_public(points: np.ndarray) -> np.ndarray:
    """One hand ``(..., 21, D)`` in InterHand2.6M order -> public order."""
    return points[..., INTERHAND_TO_PUBLIC, :]


def public_to_interhand(points: np.ndarray) -> np.ndarray:
    """One hand ``(..., 21, D)`` in public order -> InterHand2.6M order."""
    return points[..., PUBLIC_TO_INTERHAND, :]


def split_interhand42(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """InterHand2.6M ``(..., 42, D)`` -> ``(left, right)``, each ``(..., 21, D)`` in public order."""
    right = interhand_to_public(points[..., :21, :])
    left = interhand_to_public(points[..., 21:, :])
    return left, right
