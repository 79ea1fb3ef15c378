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

from lagc_hand.engines.landmark_model import Roi, crop, model_path, roi_from_palm
from lagc_hand.errors import EngineUnavailable

INPUT_SIZE = 192


def ssd_anchors(size: int = INPUT_SIZE, layers: tuple = ((8, 2), (16, 6))) -> np.ndarray:
    """(N, 2) unit-size SSD anchor centres in [0, 1] input coordinates, in the model's output
    order: per (stride, anchors per cell) layer, a grid of ceil(size / stride) cells, row-major.
    Default: the palm detector's 2016 anchors (:mod:`.pose_model` passes its own layers)."""
    out = []
    for stride, per_cell in layers:
        n = -(-size // stride)
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(out)


@dataclass
class Palm:
    """One palm: box (4,) ``x0, y0, x1, y1`` pixels, keypoints (7, 2) pixels, score in [0, 1]."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    def roi(self) -> Roi:
        """The landmark model's region for this palm (MediaPipe's rule)."""
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
    stays the best one.  boxes (N, 4), keypoints (N, K, 2), scores (N,)."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    left = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (_iou(boxes[i], boxes) > iou)
        group[i] = True
        w = scores[group][:, None]
        out.append(((boxes[group] * w).sum(0) / w.sum(), (keypoints[group] * w[:, :, None]).sum(0) / w.sum(),
                    float(scores[i])))
        left &= ~group
    return out


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
            reg = self._it.get_tensor(self._reg)[0].astype(np.float64)
            logit = self._it.get_tensor(self._cls)[0, :, 0].astype(np.float64)
        score = 1.0 / (1.0 + np.exp(-np.clip(logit, -100.0, 100.0)))
        keep = score >= (self.min_score if min_score is None else float(min_score))
        if not keep.any():
            return []
        reg, score, anc = reg[keep], score[keep], self._anchors[keep] * INPUT_SIZE
        centre = reg[:, :2] + anc
        half = reg[:, 2:4] / 2.0
        boxes = np.concatenate([centre - half, centre + half], 1)
        kps = reg[:, 4:].reshape(-1, 7, 2) + anc[:, None, :]
        palms = []
        for box, kp, s in weighted_nms(boxes, kps, score):
            corners = roi.to_image(box[[[0, 1], [2, 1], [2, 3], [0, 3]]], INPUT_SIZE)
            palms.append(Palm(np.concatenate([corners.min(0), corners.max(0)]),
                              roi.to_image(kp, INPUT_SIZE), s))
        return palms
