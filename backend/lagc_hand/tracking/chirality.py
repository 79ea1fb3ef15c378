"""Which hand is it, from its 3D shape alone (no labels).

For a right hand, ``n = (index_mcp - wrist) x (pinky_mcp - wrist)`` points out
of the palm (in any right-handed frame, camera frame included); for a left
hand it points out of the back.  Fingers flex towards the palm and the thumb
sits in front of it, so the mean displacement of the finger joints off the
palm plane, signed along ``n``, is positive for a right hand and negative for
a left one.  A flat, fully open hand gives ~0: the evidence is weak then,
which is why the tracker weighs it by its magnitude and accumulates it.

This only holds if the 3D keypoints are a true (not mirrored) reconstruction
in a right-handed frame -- MediaPipe's world landmarks in camera axes are.
"""
from __future__ import annotations

import numpy as np

# Public keypoint indices.
WRIST, INDEX_MCP, MIDDLE_MCP, RING_MCP, PINKY_MCP = 0, 5, 9, 13, 17
#: Joints whose offset off the palm plane shows the palm side: finger PIP/DIP/tips and thumb IP/tip.
CURL_POINTS = np.array([3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20])
#: Offset (metres) at which the evidence saturates.
CURL_SCALE = 0.02


def palm_offsets(keypoints3d: np.ndarray, *point_sets: np.ndarray) -> list[np.ndarray]:
    """Mean signed offsets (metres) of each set of keypoints off the palm plane,
    along the palm normal ``n = (index_mcp - wrist) x (pinky_mcp - wrist)``
    (positive on a right hand's palm side).

    keypoints3d: (..., 21, 3) metres, public order, a right-handed frame.
    point_sets: index arrays into the 21 keypoints.  Returns one (...,) float64
    array per set.  The one palm-side geometry of :func:`chirality_evidence` and
    :func:`lagc_hand.tracking.sides.chirality_score`.
    """
    k = np.asarray(keypoints3d, np.float64)
    w = k[..., WRIST, :]
    a, b = k[..., INDEX_MCP, :] - w, k[..., PINKY_MCP, :] - w
    # a x b written out: np.cross costs ~0.3 ms per call on one hand (called per detection).
    n = np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                  a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                  a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    centre = k[..., [WRIST, INDEX_MCP, MIDDLE_MCP, RING_MCP, PINKY_MCP], :].mean(-2)
    return [np.einsum("...pd,...d->...p", k[..., idx, :] - centre[..., None, :], n).mean(-1) for idx in point_sets]


def chirality_evidence(keypoints3d: np.ndarray) -> np.ndarray:
    """Signed evidence in [-1, 1] that each hand is a RIGHT hand.

    keypoints3d: (..., 21, 3) metres, public order, a right-handed frame.
    Returns (...,) float64: > 0 right, < 0 left, ~0 undecided.
    """
    (off,) = palm_offsets(keypoints3d, CURL_POINTS)
    return np.tanh(off / CURL_SCALE)
