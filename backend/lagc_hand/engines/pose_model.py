"""MediaPipe Pose run directly (``pose_detection.tflite`` + ``pose_landmark_full.tflite`` via LiteRT).

The body's wrist, index and pinky points tell where a hand should be
(:func:`lagc_hand.engines.candidates.body_rois`).  This module reproduces
MediaPipe Pose's still-image pipeline (``pose_landmark_cpu`` with
``static_image_mode``: detect, take the best detection, one landmark pass)
without the legacy ``mp.solutions`` graph API, which MediaPipe removed in
0.10.30; only the two model files of the ``mediapipe==0.10.21`` wheel are
used.  Checked against the legacy graph on real photos in
``tests/test_pose_model.py``.

Detector contract (MediaPipe's ``pose_detection_cpu`` graph):

* input (1, 224, 224, 3) float32 RGB in [-1, 1]: the whole image letterboxed
  (aspect kept, centred, zero padding);
* ``Identity`` (1, 2254, 12): per anchor box centre x, y, width, height (the
  *face* box) and 4 keypoints (x, y), in input pixels relative to the anchor
  centre; keypoint 0 = mid-hip centre, 1 = a point whose distance from it is
  half the full body's size and whose direction is the body's "up"
  (2 and 3: the same for the upper body, unused);
* ``Identity_1`` (1, 2254, 1): score logits;
* 2254 unit-size SSD anchors: strides 8, 16 with 2 anchors per cell, and
  three stride-32 layers merged into 6 per cell of a 7 x 7 grid;
* scores through a sigmoid (logits clipped to +-100), kept from 0.5 (the
  solution's ``min_detection_confidence``), weighted NMS at IoU 0.3; the best
  detection is used.

Detection -> landmark region (``pose_detection_to_roi``): centre at keypoint 0,
side 2 x |kp1 - kp0| x 1.25 (square), rotation that turns kp0 -> kp1 to
image "up" (MediaPipe's AlignmentPointsRects, target 90 degrees).

Landmark contract (``pose_landmark_by_roi_cpu`` +
``tensors_to_pose_landmarks_and_segmentation``):

* input (1, 256, 256, 3) float32 RGB in [0, 1]: the rotated square region
  resampled bilinearly, borders replicated;
* ``Identity``   (1, 195): 39 x (x, y, z, visibility logit, presence logit),
  x/y/z in input pixels; 33 body landmarks + 2 auxiliary (the next frame's
  region: centre and size/rotation point, as the detector's kp0/kp1) + 4 unused;
* ``Identity_1`` (1, 1): pose presence in [0, 1] (already a probability), kept
  from 0.5;
* ``Identity_2`` (1, 256, 256, 1): segmentation logits (unused);
* ``Identity_3`` (1, 64, 64, 39): per-landmark heatmap logits; each landmark is
  moved to the sigmoid-weighted mean of a 9 x 9 window around it when the
  window's max confidence is >= 0.5 (RefineLandmarksFromHeatmap, column/row
  index / 64, no half-pixel offset: as MediaPipe does);
* ``Identity_4`` (1, 117): 39 x (x, y, z) world landmarks in metres, region
  axes, origin between the hips.

All pixel coordinates are full-image pixels, x right, y down.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from lagc_hand.engines.landmark_model import Roi, crop, model_path
from lagc_hand.engines.palm_model import ssd_anchors, weighted_nms
from lagc_hand.errors import EngineUnavailable

DETECT_SIZE = 224
LANDMARK_SIZE = 256
HEATMAP_SIZE = 64
#: The detector's SSD layers: (stride, anchors per cell); the three stride-32 layers share one grid.
DETECT_LAYERS = ((8, 2), (16, 2), (32, 6))
#: Landmarks the model returns (33 body + 2 auxiliary + 4 unused) and the body's share of them.
NUM_RAW = 39
NUM_BODY = 33
#: Landmark indices of the auxiliary region points (centre, size/rotation point).
AUX_CENTRE, AUX_SCALE = 33, 34
#: Region side / (2 x centre-to-scale-point distance), MediaPipe's training margin.
ROI_SCALE = 1.25
#: The heatmap window: the calculator's default 9, which the 0.10.21 graph uses (the kernel_size 7
#: in some published graph files gives 1-30 px differences from the legacy graph; 9 gives < 1.6 px).
REFINE_KERNEL = 9
REFINE_MIN_CONFIDENCE = 0.5


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


def roi_from_alignment(centre: np.ndarray, scale_point: np.ndarray) -> Roi:
    """MediaPipe Pose's region from two alignment points (pixels): centred on ``centre``,
    side 2 x |scale_point - centre| x 1.25, rotated so that centre -> scale_point is "up"."""
    d = np.asarray(scale_point, np.float64) - np.asarray(centre, np.float64)
    angle = 0.5 * np.pi - np.arctan2(-d[1], d[0])
    angle = float(angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi)))
    return Roi(float(centre[0]), float(centre[1]), float(2.0 * np.hypot(*d) * ROI_SCALE), angle)


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatmap: (N, 2) landmarks in [0, 1] region units and an
    (h, w, N) logit heatmap -> (N, 2) refined landmarks (unchanged where the heatmap is unsure
    or the landmark lies off the heatmap)."""
    h, w, _ = heatmap.shape
    out = np.array(xy, np.float64)
    off = (REFINE_KERNEL - 1) // 2
    for i, (x, y) in enumerate(out):
        col, row = int(x * w), int(y * h)  # C++ float -> int truncates towards zero
        if col < 0 or col >= w or row < 0 or row >= h:
            continue
        r0, r1, c0, c1 = max(0, row - off), min(h, row + off + 1), max(0, col - off), min(w, col + off + 1)
        conf = _sigmoid(heatmap[r0:r1, c0:c1, i].astype(np.float64))
        total = conf.sum()
        if conf.max() >= REFINE_MIN_CONFIDENCE and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[i] = ((cols * conf).sum() / w / total, (rows * conf).sum() / h / total)
    return out


@dataclass
class PoseDetection:
    """One body from the detector: face box (4,) ``x0, y0, x1, y1`` pixels, keypoints (4, 2)
    pixels (0 mid-hip, 1 full-body scale/rotation point, 2 mid-shoulder, 3 upper-body point),
    score in [0, 1]."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    def roi(self) -> Roi:
        """The landmark model's region for this body (``pose_detection_to_roi``)."""
        return roi_from_alignment(self.keypoints[0], self.keypoints[1])


@dataclass
class PoseResult:
    """One body's landmarks.

    landmarks: (33, 3) x px, y px, z (relative depth, pixels at the image's scale, negative =
    nearer, origin near the hips); visibility, presence: (33,) in [0, 1]; world: (33, 3) metres,
    image axes (x right, y down, z away), origin between the hips; score: pose presence;
    roi: where the landmark model looked; next_roi: MediaPipe's region for the next frame
    (from the two auxiliary landmarks).
    """

    landmarks: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray
    world: np.ndarray
    score: float
    roi: Roi
    next_roi: Roi

    def xyv(self) -> np.ndarray:
        """(33, 3): x px, y px, visibility (what :func:`.candidates.body_rois` takes)."""
        return np.column_stack([self.landmarks[:, :2], self.visibility])


def _interpreter(name: str, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except Exception as exc:
        raise EngineUnavailable(f"the LiteRT interpreter cannot be loaded ({exc}); install ai-edge-litert") from None
    it = Interpreter(model_path=model_path(name), num_threads=int(threads))
    it.allocate_tensors()
    return it


class PoseModel:
    """MediaPipe Pose (bundled full model) on stills: detector + landmark model, one interpreter
    each; calls are serialised.

    ``model(image)`` gives (33, 3) x px, y px, visibility of the best body, or None.
    min_detection: detector score a body needs; min_presence: pose presence the landmark
    model must confirm (both 0.5, the legacy solution's defaults).
    """

    def __init__(self, threads: int = 1, min_detection: float = 0.5, min_presence: float = 0.5) -> None:
        self._det = _interpreter("pose_detection.tflite", threads)
        self._lm = _interpreter("pose_landmark_full.tflite", threads)
        self._det_in = self._det.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._det.get_output_details()}
        self._det_out = (outs["Identity"], outs["Identity_1"])
        self._lm_in = self._lm.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._lm.get_output_details()}
        self._lm_out = tuple(outs[n] for n in ("Identity", "Identity_1", "Identity_3", "Identity_4"))
        self._anchors = ssd_anchors(DETECT_SIZE, DETECT_LAYERS)
        self._lock = threading.Lock()
        self.min_detection = float(min_detection)
        self.min_presence = float(min_presence)
        self.calls = {"detect": 0, "landmarks": 0}

    def detect(self, image: np.ndarray) -> list[PoseDetection]:
        """Bodies in ``image`` ((H, W, 3) uint8 RGB), best first."""
        import cv2

        H, W = image.shape[:2]
        roi = Roi(W / 2.0, H / 2.0, float(max(W, H)), 0.0)  # the letterboxed whole image
        patch = crop(image, roi, DETECT_SIZE, border=cv2.BORDER_CONSTANT)
        x = patch.astype(np.float32) * (2.0 / 255.0) - 1.0
        with self._lock:
            self._det.set_tensor(self._det_in, x[None])
            self._det.invoke()
            reg = self._det.get_tensor(self._det_out[0])[0].astype(np.float64)
            logit = self._det.get_tensor(self._det_out[1])[0, :, 0].astype(np.float64)
            self.calls["detect"] += 1
        score = _sigmoid(logit)
        keep = score >= self.min_detection
        if not keep.any():
            return []
        reg, score, anc = reg[keep], score[keep], self._anchors[keep] * DETECT_SIZE
        centre = reg[:, :2] + anc
        half = reg[:, 2:4] / 2.0
        boxes = np.concatenate([centre - half, centre + half], 1)
        kps = reg[:, 4:].reshape(-1, 4, 2) + anc[:, None, :]
        out = []
        for box, kp, s in weighted_nms(boxes, kps, score):
            corners = roi.to_image(box[[[0, 1], [2, 1], [2, 3], [0, 3]]], DETECT_SIZE)
            out.append(PoseDetection(np.concatenate([corners.min(0), corners.max(0)]),
                                     roi.to_image(kp, DETECT_SIZE), s))
        return out

    def landmarks(self, image: np.ndarray, roi: Roi) -> Optional[PoseResult]:
        """The landmark model on ``roi`` of ``image``; None when it sees no body there."""
        x = crop(image, roi, LANDMARK_SIZE).astype(np.float32) * (1.0 / 255.0)
        with self._lock:
            self._lm.set_tensor(self._lm_in, np.ascontiguousarray(x[None]))
            self._lm.invoke()
            raw, flag, heat, world = (self._lm.get_tensor(i).copy() for i in self._lm_out)
            self.calls["landmarks"] += 1
        score = float(flag.reshape(-1)[0])
        if score < self.min_presence:
            return None
        raw = raw.reshape(NUM_RAW, 5).astype(np.float64)
        xy = refine_from_heatmap(raw[:, :2] / LANDMARK_SIZE, heat[0])
        pts = roi.to_image(xy * LANDMARK_SIZE, LANDMARK_SIZE)
        z = raw[:, 2] / LANDMARK_SIZE * roi.side
        w = world.reshape(NUM_RAW, 3).astype(np.float64)[:NUM_BODY]
        c, s = np.cos(roi.angle), np.sin(roi.angle)
        w[:, :2] = w[:, :2] @ np.array([[c, s], [-s, c]])  # region axes -> image axes
        return PoseResult(landmarks=np.column_stack([pts, z])[:NUM_BODY], visibility=_sigmoid(raw[:NUM_BODY, 3]),
                          presence=_sigmoid(raw[:NUM_BODY, 4]), world=w, score=score, roi=roi,
                          next_roi=roi_from_alignment(pts[AUX_CENTRE], pts[AUX_SCALE]))

    def run(self, image: np.ndarray, previous: Optional[PoseResult] = None) -> Optional[PoseResult]:
        """The best body in ``image``: with ``previous`` (the last frame's result) first where
        MediaPipe would track it (one landmark pass, no detector), else detect + landmarks."""
        if previous is not None:
            res = self.landmarks(image, previous.next_roi)
            if res is not None:
                return res
        dets = self.detect(image)
        return self.landmarks(image, dets[0].roi()) if dets else None

    def __call__(self, image: np.ndarray) -> Optional[np.ndarray]:
        """Still image (H, W, 3) uint8 RGB -> (33, 3) x px, y px, visibility, or None."""
        res = self.run(np.ascontiguousarray(image))
        return None if res is None else res.xyv()

    def close(self) -> None:
        """Nothing to release (the interpreters go with the object); kept for the engine's close()."""
