"""Plain MediaPipe Hands through its legacy graph API (``mediapipe.python.solutions``).

This is ``--engine mediapipe-raw``: the benchmark's reference "plain MediaPipe"
(``bench/real.py``, ``synth/verify.py``), kept exactly as MediaPipe ships it.
The default engine (:mod:`.recovery`) does not use it: it runs the same bundled
models directly (:mod:`.hands_tracker`), because MediaPipe removed
``mp.solutions`` in 0.10.30; this module then stops working and the default
engine does not.

(``mediapipe==0.10.21``, CPU, offline.)

Why the legacy ``mediapipe.solutions.hands`` graph and not the Tasks
``HandLandmarker``: 0.10.21 bundles ``palm_detection_full.tflite`` and
``hand_landmark_full.tflite`` (and the lite pair) in the wheel, and the legacy
graph loads exactly those files from the package, so nothing is downloaded.
The Tasks API needs a ``.task`` bundle that is not in the wheel; one can be
zipped together from the same two files and it runs, but then we would be
shipping a hand-assembled bundle whose pre/post-processing metadata nobody
checked.  The legacy graph runs with ``static_image_mode=False``: palm
detection seeds a landmark tracker that follows each hand between frames,
which is what VIDEO mode does in the Tasks API.

Conventions of the output (checked on the rendered sample clip, whose ground
truth is known, see ``tests/test_engine_mediapipe.py``):

* 2D: normalised landmark ``(x, y)`` times ``(W, H)`` -> pixels.
* 3D: the *world* landmarks are metres around the hand's approximate centre;
  their axes follow the image (x right, y down) and z grows away from the
  camera, i.e. they are already camera-frame axes (:data:`WORLD_AXIS_SIGNS`).
* Handedness: MediaPipe's label assumes a mirrored (selfie) image, so in a
  normal image its "Left" is a real right hand.  We return P(right) in the
  real image (:data:`LABEL_MEANS_RIGHT`).  It is per-frame evidence only; the
  tracker accumulates it over time.
* score: MediaPipe's handedness-classifier confidence (the graph keeps only
  hands whose presence passed ``min_tracking_confidence``, and does not expose
  the presence score itself).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lagc_hand.engines.base import HandObservation
from lagc_hand.engines.hands_tracker import LABEL_MEANS_RIGHT, WORLD_AXIS_SIGNS
from lagc_hand.errors import EngineUnavailable, InputError


class MediaPipeEngine:
    """MediaPipe Hands in tracking mode, up to ``max_hands`` hands per frame.

    model_complexity: 1 = full landmark model (default), 0 = lite (faster).
    """

    name = "mediapipe"

    def __init__(
        self,
        max_hands: int = 2,
        model_complexity: int = 1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        **_: Any,
    ) -> None:
        try:
            from mediapipe.python.solutions import hands as mp_hands
        except Exception as exc:  # ImportError, or a broken native library
            raise EngineUnavailable(f"MediaPipe cannot be loaded here ({exc}); install mediapipe==0.10.21") from None
        self.max_hands = int(max_hands)
        self._hands = mp_hands.Hands(
            static_image_mode=False,
            max_num_hands=self.max_hands,
            model_complexity=int(model_complexity),
            min_detection_confidence=float(min_detection_confidence),
            min_tracking_confidence=float(min_tracking_confidence),
        )
        self._size: tuple[int, int] | None = None

    def process(self, image: np.ndarray, time: float = 0.0) -> list[HandObservation]:
        """``image``: (H, W, 3) uint8 RGB.  Returns 0..max_hands observations."""
        if image is None or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError("the engine needs (H, W, 3) uint8 RGB images")
        h, w = image.shape[:2]
        if self._size is not None and self._size != (w, h):
            # The tracker's state is in normalised image coordinates of one size.
            self.reset()
        self._size = (w, h)
        result = self._hands.process(np.ascontiguousarray(image))
        if not result.multi_hand_landmarks:
            return []
        out = []
        worlds = result.multi_hand_world_landmarks or [None] * len(result.multi_hand_landmarks)
        for lm, world, hd in zip(result.multi_hand_landmarks, worlds, result.multi_handedness):
            kp = np.array([[p.x * w, p.y * h] for p in lm.landmark], dtype=np.float32)
            if world is not None:
                k3 = np.array([[p.x, p.y, p.z] for p in world.landmark], dtype=np.float32) * WORLD_AXIS_SIGNS
            else:
                k3 = np.zeros((21, 3), np.float32)
            cls = hd.classification[0]
            p_label = float(cls.score)
            p_right = p_label if cls.label == LABEL_MEANS_RIGHT else 1.0 - p_label
            box = np.array([kp[:, 0].min(), kp[:, 1].min(), kp[:, 0].max(), kp[:, 1].max()], np.float32)
            out.append(
                HandObservation(
                    keypoints2d=kp,
                    keypoints3d=k3,
                    handedness=float(np.clip(p_right, 0.0, 1.0)),
                    score=float(np.clip(p_label, 0.0, 1.0)),
                    box=box,
                    extra={"label": cls.label},
                )
            )
        return out

    def reset(self) -> None:
        """Forget the tracking state (e.g. before an unrelated clip)."""
        self._hands.reset()

    def close(self) -> None:
        if self._hands is not None:
            self._hands.close()
            self._hands = None

    def __enter__(self) -> "MediaPipeEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
