"""Which boxes a camera sees (numpy only): the test behind keeping the user's
own objects from hiding imported hands.

Coordinates are a Blender camera's local frame: x right, y up, looking down
-Z, metres.  The frustum is given by the four corners of the camera's view
frame (``Camera.view_frame()``, any depth), so lens shift and sensor fit are
included, and cut at ``near`` / ``far`` distances along -Z.
"""
from __future__ import annotations

import numpy as np


def frustum_planes(frame: np.ndarray, near: float, far: float) -> np.ndarray:
    """(6, 4) inward planes ``(n, d)`` with ``n . p + d >= 0`` inside.

    frame: (4, 3) view-frame corners in order around the frame, z < 0.
    """
    frame = np.asarray(frame, dtype=np.float64)
    centre = frame.mean(axis=0)
    planes = []
    for a, b in zip(frame, np.roll(frame, -1, axis=0)):
        n = np.cross(a, b)  # plane through the eye (origin) and one frame edge
        if n @ centre < 0:
            n = -n
        planes.append((*n, 0.0))
    planes.append((0.0, 0.0, -1.0, -near))  # depth -z >= near
    planes.append((0.0, 0.0, 1.0, far))     # depth -z <= far
    return np.array(planes)


def box_may_be_visible(corners: np.ndarray, planes: np.ndarray) -> bool:
    """False only when all 8 ``corners`` (8, 3) lie outside one plane: the box is
    then certainly out of view.  (Conservative: a large box beside a corner of
    the frustum may count as visible; a box around the camera always does.)"""
    c = np.asarray(corners, dtype=np.float64)
    side = c @ planes[:, :3].T + planes[:, 3]  # (8, 6)
    return not bool(np.any(np.all(side < 0, axis=0)))
