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


def chirality_evidence(keypoints3d: np.ndarray) -> np.ndarray:
    """Signed evidence in [-1, 1] that each hand is a RIGHT hand.

    keypoints3d: (..., 21, 3) metres, public order, a right-handed frame.
    Returns (...,) float64: > 0 right, < 0 left, ~0 undecided.
    """
    k = np.asarray(keypoints3d, np.float64)
    w = k[..., WRIST, :]
    n = np.cross(k[..., INDEX_MCP, :] - w, k[..., PINKY_MCP, :] - w)
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    palm_centre = (w + k[..., INDEX_MCP, :] + k[..., MIDDLE_MCP, :] + k[..., RING_MCP, :] + k[..., PINKY_MCP, :]) / 5
    off = np.einsum("...pd,...d->...p", k[..., CURL_POINTS, :] - palm_centre[..., None, :], n)
    return np.tanh(off.mean(-1) / CURL_SCALE)
