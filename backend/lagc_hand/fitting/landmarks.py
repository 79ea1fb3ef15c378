"""Where a detector's landmarks sit on the hand model's skeleton.

MediaPipe's 21 landmarks are not the hand model's keypoints: on the rendered
clips (made from the hand model itself, so the truth is its keypoints), its 2D
landmarks lie short of the model's joints along every finger -- the PIP joints
by ~8 % of their bone, the DIP joints by ~20 %, the fingertips by ~31 % of the
last segment -- and its wrist lies ~7 % of the palm inside the model's wrist
joint.  Human labels show the same (OneHand10K: fingertips 30-45 % of the last
segment, the wrist 16 % of the palm beyond MediaPipe's).  A fit that lays the
model's keypoints onto those landmarks draws a hand ~5 % smaller in the image,
and since its metric size is held by the shape prior, places it ~5 % too far
from the camera (rendered two_hands: +32 mm at 0.5 m).

The landmark ``j`` of the detector is modelled as a point on the model's bone
into joint ``j``, displaced along it by a fixed fraction of the bone::

    p_j = k_j + beta_j (k_j - k_parent(j))     (the wrist: along middle MCP -> wrist)

which is linear in the keypoints, ``p = M k`` (:func:`convention_matrix`).  The
fit puts the model's keypoints onto ``M^-1 u`` (the detector's pixels ``u``
moved to where the model's joints project, :func:`to_model_points`; exact up to
the perspective of one bone), and the cleanup puts ``M k`` onto ``u``
(:func:`to_detector_points`).

Arrays: keypoints (..., 21, D) in public order, any unit (pixels or metres).
"""
from __future__ import annotations

import numpy as np

from lagc_hand_blender.core.skeleton import PUBLIC_PARENTS

#: beta_j per public keypoint for MediaPipe's landmarks (engine "mediapipe").
#: Measured on the rendered two_hands clip (240 hand-frames, truth = the model's
#: keypoints): median offset of MediaPipe's 2D landmark from the true joint's
#: projection along the projected bone into the joint, over the bone's projected
#: length; the four fingers share one value per joint level (their medians:
#: MCP 0.5 / -0.9 / 1.4 / 1.9 %, PIP -5.0 / -9.3 / -8.1 / -8.8 %, DIP -16.0 /
#: -21.4 / -21.2 / -20.6 %, tip -30.5 / -32.2 / -34.6 / -27.7 %).
MEDIAPIPE_BETA = np.array([
    -0.067,                          # wrist (along middle MCP -> wrist)
    0.099, -0.099, -0.138, -0.275,   # thumb CMC, MCP, IP, tip
    0.0, -0.078, -0.198, -0.312,     # index MCP, PIP, DIP, tip
    0.0, -0.078, -0.198, -0.312,     # middle
    0.0, -0.078, -0.198, -0.312,     # ring
    0.0, -0.078, -0.198, -0.312,     # little
])

#: Landmark conventions by engine name: the detector's landmark offsets (21,);
#: engines not listed give the model's own keypoints (no offset).
CONVENTIONS = {"mediapipe": MEDIAPIPE_BETA, "mediapipe-raw": MEDIAPIPE_BETA}  # one detector, two engines

#: The bone each offset runs along: the parent, and for the wrist the middle MCP.
_FROM = np.array(PUBLIC_PARENTS)
_FROM[0] = 9


def convention_matrix(beta: np.ndarray) -> np.ndarray:
    """(21, 21) M with detector points ``p = M k`` for offsets ``beta`` (21,)."""
    beta = np.asarray(beta, np.float64)
    M = np.diag(1.0 + beta)
    M[np.arange(21), _FROM] -= beta
    return M


def to_detector_points(kp: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Model keypoints (..., 21, D) -> where the detector puts its landmarks (..., 21, D)."""
    return np.einsum("jk,...kd->...jd", convention_matrix(beta), np.asarray(kp, np.float64))


def to_model_points(uv: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Detector landmarks (..., 21, D) -> the model keypoints they stand for (..., 21, D)."""
    Minv = np.linalg.inv(convention_matrix(beta))
    return np.einsum("jk,...kd->...jd", Minv, np.asarray(uv, np.float64))


def convention_for(engine: str | None) -> np.ndarray | None:
    """The offsets (21,) of an engine's landmarks, or None for the model's own keypoints."""
    return CONVENTIONS.get(engine or "")
