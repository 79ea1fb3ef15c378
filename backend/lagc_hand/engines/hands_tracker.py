"""MediaPipe Hands' tracking mode run directly, without the legacy graph API.

The two bundled models run through LiteRT (:mod:`.palm_model`,
:mod:`.landmark_model`, each checked against MediaPipe's own output); this
module is the graph around them, MediaPipe's ``hand_landmark_tracking_cpu``
reproduced step by step, so the default engine does not need
``mediapipe.python.solutions`` (removed in MediaPipe 0.10.30).  Its region
arithmetic and crops are MediaPipe's own to the bit (float32, :mod:`.mp_geometry`;
OpenCV's perspective warp, :func:`~.landmark_model.crop`): the tracking loop
amplifies any difference, and with them the output equals the legacy graph's
(measured on 16 rendered and real clips, bench/RESULTS.md).  Per frame:

1. the regions the previous frame's landmarks gave (:func:`roi_from_keypoints`);
2. only when fewer than ``max_hands`` are tracked: palm detection on the whole
   frame (``min_detection_confidence``), at most ``max_hands`` palms, best first,
   each turned into a landmark region (:func:`roi_from_palm`);
3. :func:`associate` -- MediaPipe's ``AssociationNormRectCalculator``
   (``min_similarity_threshold`` 0.5) over the palm regions followed by the
   tracked regions: each region removes the earlier ones it overlaps by IoU
   > 0.5 (axis-aligned, rotation ignored), so a tracked region wins over a palm
   region on the same hand and two tracks that drifted onto one hand become one;
4. the landmark model on every region; hands with presence >=
   ``min_tracking_confidence`` are output and tracked into the next frame.

:func:`detect_hands` is the still-image mode (steps 2-4 without tracking), used
by the recovery engine on its crops.  Output conventions are those of
:class:`~lagc_hand.engines.mediapipe_engine.MediaPipeEngine` (the legacy graph,
kept as ``mediapipe-raw``): 2D pixels, world landmarks in metres with camera
axes, ``handedness`` = P(right) in the un-mirrored image, ``score`` = the
handedness classifier's confidence max(p, 1 - p); the presence score is in
``extra["presence"]``.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import numpy as np

from lagc_hand.engines.base import HandObservation
from lagc_hand.engines.dedup import keypoint_box
from lagc_hand.engines.landmark_model import (HandLandmarkModel, LandmarkResult, Roi, model_path,
                                              roi_from_keypoints)
from lagc_hand.engines.palm_model import PalmModel
from lagc_hand.errors import InputError

#: Sign of each world-landmark axis in the camera frame (x right, y down, z forward).
WORLD_AXIS_SIGNS = np.array([1.0, 1.0, 1.0], dtype=np.float32)
#: MediaPipe's handedness label that means a RIGHT hand in an un-mirrored image.
LABEL_MEANS_RIGHT = "Left"
#: MediaPipe's ``AssociationNormRectCalculator`` threshold in the hand tracking graph.
ASSOCIATION_IOU = 0.5


def model_files(model_complexity: int = 1) -> tuple[str, str]:
    """(palm detector, landmark model) file names: 1 = full models, 0 = lite."""
    kind = "lite" if int(model_complexity) == 0 else "full"
    return f"palm_detection_{kind}.tflite", f"hand_landmark_{kind}.tflite"


def rect_iou(a: Roi, b: Roi) -> float:
    """IoU of two regions as MediaPipe's association compares them: the unrotated
    squares (side x side around the centre).  MediaPipe works in normalised image
    coordinates; IoU does not change under that per-axis scaling."""
    ix = min(a.cx + a.side / 2, b.cx + b.side / 2) - max(a.cx - a.side / 2, b.cx - b.side / 2)
    iy = min(a.cy + a.side / 2, b.cy + b.side / 2) - max(a.cy - a.side / 2, b.cy - b.side / 2)
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = a.side ** 2 + b.side ** 2 - inter
    return float(inter / union) if union > 0 else 0.0


def associate(*streams: Sequence[Roi], threshold: float = ASSOCIATION_IOU) -> list[Roi]:
    """MediaPipe's association of region lists, later streams (and later elements) winning:
    each region, in order, removes the regions kept so far that it overlaps by IoU >
    ``threshold``, then is appended."""
    out: list[Roi] = []
    for stream in streams:
        for r in stream:
            out = [o for o in out if rect_iou(r, o) <= threshold]
            out.append(r)
    return out


def observation(res: LandmarkResult, **extra: Any) -> HandObservation:
    """A landmark-model result as the legacy engine reports a hand: ``score`` = the
    handedness classifier's confidence, ``extra``: its label and the presence."""
    kp = res.keypoints2d.astype(np.float32)
    p_right = float(np.clip(res.p_right, 0.0, 1.0))
    label = LABEL_MEANS_RIGHT if p_right >= 0.5 else "Right"
    return HandObservation(keypoints2d=kp, keypoints3d=res.world.astype(np.float32) * WORLD_AXIS_SIGNS,
                           handedness=p_right, score=max(p_right, 1.0 - p_right),
                           box=keypoint_box(kp).astype(np.float32),
                           extra={"label": label, "presence": round(float(res.presence), 4), **extra})


def detect_hands(palm: PalmModel, landmarks: HandLandmarkModel, image: np.ndarray, max_hands: int = 2,
                 min_detection_confidence: float = 0.5, min_presence: float = 0.5,
                 tracked: Sequence[Roi] = ()) -> list[LandmarkResult]:
    """MediaPipe Hands on one image ((H, W, 3) uint8 RGB): palm detection on the whole
    image (skipped when ``tracked`` already holds ``max_hands`` regions), at most
    ``max_hands`` palms, their regions associated with ``tracked``, the landmark model on
    each; the results with presence >= ``min_presence``, in MediaPipe's order."""
    palms = []
    if len(tracked) < max_hands:
        palms = palm.detect(image, min_score=min_detection_confidence)[:max_hands]
    rois = associate([p.roi() for p in palms], list(tracked))
    results = [landmarks.run(image, r) for r in rois]
    return [r for r in results if r.presence >= min_presence]


class HandsTracker:
    """MediaPipe Hands in tracking mode (``static_image_mode=False``), run directly.

    Same interface as :class:`~lagc_hand.engines.mediapipe_engine.MediaPipeEngine`.
    model_complexity: 1 = full models (default), 0 = lite.  threads: interpreter threads
    per model (1 in video: chunks already run in parallel threads, and LiteRT's
    ``invoke`` releases the GIL).  ``palm`` / ``landmarks``: share models with a caller
    (the recovery engine's crop search); created here when None.
    """

    name = "mediapipe-direct"

    def __init__(self, max_hands: int = 2, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, threads: int = 1, palm: Optional[PalmModel] = None,
                 landmarks: Optional[HandLandmarkModel] = None, **_: Any) -> None:
        palm_file, landmark_file = model_files(model_complexity)
        self.max_hands = int(max_hands)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.palm = palm or PalmModel(threads=threads, min_score=self.min_detection_confidence,
                                      path=model_path(palm_file))
        self.landmarks = landmarks or HandLandmarkModel(path=model_path(landmark_file), threads=threads)
        self._tracked: list[Roi] = []
        self._size: Optional[tuple[int, int]] = None
        self.palm_runs = 0

    def process(self, image: np.ndarray, time: float = 0.0) -> list[HandObservation]:
        """``image``: (H, W, 3) uint8 RGB.  Returns 0..max_hands observations (rarely more:
        MediaPipe's graph can add a palm beside ``max_hands - 1`` tracked hands)."""
        if image is None or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError("the engine needs (H, W, 3) uint8 RGB images")
        if self.palm is None:
            raise InputError("the engine is closed")
        h, w = image.shape[:2]
        if self._size is not None and self._size != (w, h):
            self.reset()  # the tracked regions belong to one image size
        self._size = (w, h)
        if len(self._tracked) < self.max_hands:
            self.palm_runs += 1
        found = detect_hands(self.palm, self.landmarks, image, self.max_hands, self.min_detection_confidence,
                             self.min_tracking_confidence, self._tracked)
        self._tracked = [roi_from_keypoints(r.keypoints2d, (w, h)) for r in found]
        return [observation(r) for r in found]

    def reset(self) -> None:
        """Forget the tracked hands (e.g. before an unrelated clip)."""
        self._tracked = []
        self._size = None

    def close(self) -> None:
        self.palm = None
        self.landmarks = None
        self._tracked = []

    def __enter__(self) -> "HandsTracker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def default_threads(still: bool) -> int:
    """Interpreter threads: 1 in video (chunks run in parallel), up to 4 cores on a still."""
    return min(4, os.cpu_count() or 1) if still else 1
