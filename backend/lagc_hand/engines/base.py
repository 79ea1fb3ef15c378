"""The engine interface: one image in, the hands seen in it out.

Every engine (``mediapipe``, ``lagc``, ...) returns the same
:class:`HandObservation` type, so tracking, placement and fitting do not care
which engine ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol

import numpy as np


@dataclass
class HandObservation:
    """One hand seen in one frame.

    keypoints2d: (21, 2) float32, pixels, public keypoint order
                 (``lagc_hand_blender.core.skeleton.PUBLIC_KEYPOINT_NAMES``).
    keypoints3d: (21, 3) float32, metres, hand-relative (origin arbitrary, e.g.
                 the hand's centre), axes of the camera frame (x right, y down,
                 z away from the camera).
    handedness:  probability in [0, 1] that this is a RIGHT hand as seen in the
                 real (un-mirrored) image.
    score:       confidence in [0, 1] that this is a hand with these keypoints.
    box:         (4,) float32 ``x0, y0, x1, y1`` pixels, or None.
    vertices:    (V, 3) float32 mesh vertices in the keypoints3d frame, learned
                 engines only; None otherwise.
    extra:       engine-specific details (JSON-able), e.g. which recovery pass found it.
    """

    keypoints2d: np.ndarray
    keypoints3d: np.ndarray
    handedness: float
    score: float
    box: Optional[np.ndarray] = None
    vertices: Optional[np.ndarray] = None
    extra: dict = field(default_factory=dict)


@dataclass
class FrameObservations:
    """All hands an engine saw in one frame.  index: source frame number;
    time: seconds from the start of the video."""

    index: int
    time: float
    hands: list[HandObservation]


class Engine(Protocol):
    """A per-frame hand detector/reconstructor.

    ``process`` is called once per frame, in time order (engines may track
    between frames); ``image`` is (H, W, 3) uint8 RGB; ``time`` is seconds.
    """

    name: str

    def process(self, image: np.ndarray, time: float) -> list[HandObservation]: ...

    def close(self) -> None: ...
