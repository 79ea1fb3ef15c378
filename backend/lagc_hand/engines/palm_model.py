"""MediaPipe's palm detector run directly (``palm_detection_full.tflite`` via LiteRT).

Together with :mod:`.landmark_model` this is MediaPipe Hands without its graph
API: palm boxes on the whole image (or on any square region, e.g. a padded
frame), each turned into the landmark model's region by
:func:`lagc_hand.engines.landmark_model.roi_from_palm`.

Model contract (MediaPipe's ``palm_detection_cpu`` graph, reproduced here and
checked against MediaPipe's own still-image output in
``tests/test_landmark_model.py``):

* input (1, 192, 192, 3) float32 RGB in [0, 1] (not [-1, 1]: that gives
  huge logits everywhere): the region letterboxed (aspect kept, centred,
  black padding);
* ``Identity`` (1, 2016, 18): per anchor box centre x, y, width, height and 7
  keypoints (x, y), in input pixels relative to the anchor centre;
* ``Identity_1`` (1, 2016, 1): score logits;
* 2016 SSD anchors: a 24 x 24 grid (stride 8) with 2 anchors per cell and a
  12 x 12 grid (stride 16) with 6, all of unit size;
* scores through a sigmoid (logits clipped to +-100), kept above 0.5, then
  weighted non-maximum suppression at IoU 0.3.

Keypoint 0 is the wrist centre and keypoint 2 the middle finger's base, which
give the hand's direction.  Pixel coordinates are full-image pixels.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from lagc_hand.engines import mp_geometry as mpg
from lagc_hand.engines.landmark_model import Roi, crop, model_path, roi_from_palm
from lagc_hand.engines.mp_geometry import expf
from lagc_hand.errors import EngineUnavailable

INPUT_SIZE = 192


def ssd_anchors(size: int = INPUT_SIZE, layers: tuple = ((8, 2), (16, 6))) -> np.ndarray:
    """(N, 2) unit-size SSD anchor centres in [0, 1] input coordinates, in the model's output
    order: per (stride, anchors per cell) layer, a grid of ceil(size / stride) cells, row-major.
    Default: the palm detector's 2016 anchors (:mod:`.pose_model` passes its own layers).
    The centres are MediaPipe's float32 values ``(i + 0.5f) * 1.0f / n`` (as float64)."""
    out = []
    f32 = np.float32
    for stride, per_cell in layers:
        n = -(-size // stride)
        c = ((np.arange(n, dtype=f32) + f32(0.5)) * f32(1.0) / f32(n)).astype(np.float64)
        ys, xs = np.meshgrid(c, c, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(out)


@dataclass
class Palm:
    """One palm: box (4,) ``x0, y0, x1, y1`` pixels, keypoints (7, 2) pixels, score in [0, 1];
    rect: its landmark region as MediaPipe computes it (float32 ``NormalizedRect``) in an
    image of ``size`` (W, H) -- set for palms found on the whole image."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float
    rect: Optional[tuple] = None
    size: Optional[tuple[int, int]] = None

    def roi(self) -> Roi:
        """The landmark model's region for this palm (MediaPipe's rule)."""
        if self.rect is not None and self.size is not None:
            return Roi.from_normalized(self.rect, *self.size)
        return roi_from_palm(self.box, self.keypoints[0], self.keypoints[2])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` (4,) with boxes ``b`` (N, 4)."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou: float = 0.3) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: each best remaining box absorbs those overlapping
    it by more than ``iou``; box and keypoints become their score-weighted mean, the score
    stays the best one.  boxes (N, 4) ``x0, y0, x1, y1``, keypoints (N, K, 2), scores (N,).
    The means are MediaPipe's float32 sums, in its order (best first), so that a palm's
    region comes out bit-equal to MediaPipe's (see :mod:`.mp_geometry` for why)."""
    f32 = np.float32
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    b32, k32, s32 = boxes.astype(f32), keypoints.astype(f32), scores.astype(f32)
    left = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (_iou(boxes[i], boxes) > iou)
        group[i] = True
        total, box, kps = f32(0.0), np.zeros(4, f32), np.zeros(k32.shape[1:], f32)
        for j in np.flatnonzero(group):
            total = total + s32[j]
            box = box + b32[j] * s32[j]
            kps = kps + k32[j] * s32[j]
        out.append((box / total, kps / total, float(scores[i])))
        left &= ~group
    return out


def _sigmoid_f32(logits: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices, float32 scores) of the logits whose score ``1 / (1 + expf(-clip(x, 100)))``
    (MediaPipe's float32 sigmoid) is >= ``min_score``."""
    f32 = np.float32
    x = np.clip(logits.astype(f32), f32(-100.0), f32(100.0))
    rough = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    idx = np.flatnonzero(rough >= min_score - 1e-6)
    sc = np.array([f32(1.0) / (f32(1.0) + expf(-x[i])) for i in idx], f32)
    keep = sc >= f32(min_score)
    return idx[keep], sc[keep]


def decode(reg: np.ndarray, anchors: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's ``TensorsToDetectionsCalculator`` box decoding in float32: raw regressions
    (N, 4 + 2K) at unit-size anchors (N, 2) ([0, 1]) -> boxes (N, 4) ``xmin, ymin, xmin +
    width, ymin + height`` and keypoints (N, K, 2), in [0, 1] tensor coordinates (the box's
    far corner as MediaPipe's weighted suppression adds it up)."""
    f32 = np.float32
    r, a, scale = reg.astype(f32), anchors.astype(f32), f32(size)
    centre = r[:, :2] / scale + a
    half = r[:, 2:4] / scale / f32(2.0)
    lo, hi = centre - half, centre + half
    boxes = np.concatenate([lo, lo + (hi - lo)], 1)
    kps = r[:, 4:].reshape(len(r), -1, 2) / scale + a[:, None, :]
    return boxes, kps


def whole_image_palm(box: np.ndarray, kps: np.ndarray, score: float, W: int, H: int) -> Palm:
    """A palm found on the whole (letterboxed) W x H image, from its tensor-normalised box
    (4,) ``xmin, ymin, xmax, ymax`` and keypoints (7, 2), through MediaPipe's float32
    steps: letterbox removal, ``DetectionsToRectsCalculator`` (rotation from keypoint 0 to
    2), ``RectTransformationCalculator`` (scale 2.6, shift -0.5, square)."""
    f32 = np.float32
    _, pad_x, pad_y = mpg.square_padding(W, H)
    kx, ky = f32(1.0) - (pad_x + pad_x), f32(1.0) - (pad_y + pad_y)
    xmin, ymin = (box[0] - pad_x) / kx, (box[1] - pad_y) / ky
    w, h = (box[2] - box[0]) / kx, (box[3] - box[1]) / ky
    k = np.stack([(kps[:, 0] - pad_x) / kx, (kps[:, 1] - pad_y) / ky], 1)
    rotation = mpg.rotation_from_points(k[0, 0], k[0, 1], k[2, 0], k[2, 1], W, H)
    rect = (xmin + w / f32(2), ymin + h / f32(2), w, h, rotation)
    rect = mpg.transform_rect(rect, W, H, 2.6, -0.5)
    size = np.array([W, H], np.float64)
    pixels = np.array([xmin, ymin, xmin + w, ymin + h], np.float64) * np.tile(size, 2)
    return Palm(pixels, k.astype(np.float64) * size, score, rect, (W, H))


class PalmModel:
    """``palm_detection_full.tflite`` on an image (one interpreter; calls are serialised)."""

    def __init__(self, threads: int = 1, min_score: float = 0.5, path: Optional[str] = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except Exception as exc:
            raise EngineUnavailable(f"the LiteRT interpreter cannot be loaded ({exc}); "
                                    "install ai-edge-litert") from None
        self._it = Interpreter(model_path=path or model_path("palm_detection_full.tflite"), num_threads=int(threads))
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._it.get_output_details()}
        self._reg, self._cls = outs["Identity"], outs["Identity_1"]
        self._anchors = ssd_anchors()
        self._lock = threading.Lock()
        self.min_score = float(min_score)

    def detect(self, image: np.ndarray, region: Optional[Roi] = None,
               min_score: Optional[float] = None) -> list[Palm]:
        """Palms in ``image`` ((H, W, 3) uint8 RGB), best first; ``region``: where to look
        (default: the whole image, letterboxed to a square); ``min_score``: detection
        threshold (default :attr:`min_score`)."""
        import cv2

        H, W = image.shape[:2]
        roi = region or Roi(W / 2.0, H / 2.0, float(max(W, H)), 0.0)
        patch = crop(image, roi, INPUT_SIZE, border=cv2.BORDER_CONSTANT)
        x = patch.astype(np.float32) * (1.0 / 255.0)
        with self._lock:
            self._it.set_tensor(self._in, x[None])
            self._it.invoke()
            reg = self._it.get_tensor(self._reg)[0].copy()
            logit = self._it.get_tensor(self._cls)[0, :, 0].copy()
        keep, score = _sigmoid_f32(logit, self.min_score if min_score is None else float(min_score))
        if not len(keep):
            return []
        boxes, kps = decode(reg[keep], self._anchors[keep])
        palms = []
        for box, kp, s in weighted_nms(boxes, kps, score):
            if region is None:
                palms.append(whole_image_palm(box, kp, s, W, H))
                continue
            corners = roi.to_image(box[[[0, 1], [2, 1], [2, 3], [0, 3]]].astype(np.float64) * INPUT_SIZE, INPUT_SIZE)
            palms.append(Palm(np.concatenate([corners.min(0), corners.max(0)]),
                              roi.to_image(kp.astype(np.float64) * INPUT_SIZE, INPUT_SIZE), s))
        return palms
