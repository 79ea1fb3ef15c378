"""The ``lagc`` engine: the LAGC-Hand network as a per-frame hand engine.

Per frame: find the region holding the hands and cut the square crop as in
training (IntagHand's box: centre of the box, half side ``max(w, h) / 2 / 0.8``,
resized to 256x256).  When both hands were kept in the previous frame the box
is the one around that frame's projected mesh vertices -- exactly the training
crop; otherwise it comes from MediaPipe's hand landmarks (widened by
``KEYPOINT_BOX_MARGIN``, since keypoint boxes are tighter than vertex boxes),
or from a fixed region the caller sets.  The network's outputs are mapped back:
2D keypoints through the weak-perspective camera into full-image pixels, 3D
keypoints and mesh vertices in metres (hand-relative, origin at the
middle-finger MCP, camera axes; the network's scale, i.e. hands normalised to
a 9.5 cm wrist-to-middle-MCP length), handedness from which output hand it is.

Scores do not use the heatmaps (the compact module's heatmaps are the least
trustworthy output, issue 14): a hand's score is the fraction of its projected
vertices inside the crop, times, on frames where the detector ran, the
fraction of its 2D keypoints inside a detected hand box (widened by
``DETECTION_SLACK``; a box of the other side counts half, since detectors swap
sides of touching hands), or on tracked frames its previous score (so a hand
drifting out of the crop loses confidence until it is dropped and the detector
is asked again).  A hand
whose 2D extent is under ``MIN_EXTENT`` of the crop side scores 0.
Only offered with a checkpoint (``EngineUnavailable`` otherwise).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from lagc_hand.engines.base import HandObservation
from lagc_hand.errors import EngineUnavailable, InputError, ModelFileError

CROP_SIZE = 256
#: keypoint boxes are tighter than IntagHand's vertex boxes: widen them a bit
#: (vertex / keypoint box extent on 40 synthetic two-hand samples: median 1.10, p90 1.27).
KEYPOINT_BOX_MARGIN = 1.15
#: a detection box is widened by this fraction of its size on each side when scoring
DETECTION_SLACK = 0.15
#: hands smaller than this fraction of the crop side are not hands the network saw
MIN_EXTENT = 0.05


class LagcEngine:
    name = "lagc"

    def __init__(self, checkpoint: Optional[str] = None, device: str = "auto", min_score: float = 0.25,
                 detector: Any = None, fixed_box: Optional[np.ndarray] = None, **_: Any) -> None:
        """checkpoint: path of a ``lagc-hand train`` checkpoint; device: auto/cpu/cuda;
        min_score: hands below this confidence are dropped; detector: an engine
        whose observations carry ``box`` (default: MediaPipe, created on first
        need); fixed_box: (4,) x0, y0, x1, y1 pixels to use instead of detection."""
        if not checkpoint:
            raise EngineUnavailable("the 'lagc' engine needs a trained LAGC-Hand checkpoint (--checkpoint PATH)")
        try:
            import torch  # noqa: F401

            from lagc_hand.net.checkpoint import load_model
            from lagc_hand.net.training import resolve_device
        except ImportError as exc:
            raise EngineUnavailable(f"the 'lagc' engine needs torch ({exc})") from None
        try:
            self.device = resolve_device(device)
            self.model, _ = load_model(checkpoint, self.device)
        except (ModelFileError, InputError) as exc:
            raise EngineUnavailable(f"the 'lagc' engine cannot load its checkpoint: {exc}") from None
        self.min_score = float(min_score)
        self._detector = detector
        self._own_detector = detector is None
        self.fixed_box = None if fixed_box is None else np.asarray(fixed_box, dtype=np.float64).reshape(4)
        self._prev_crop: Optional[tuple[np.ndarray, float]] = None
        self._prev_scores = np.ones(2)

    # -- region ---------------------------------------------------------------
    def _region(self, image: np.ndarray, time: float) -> tuple[Optional[tuple[np.ndarray, float]], Optional[list]]:
        """((centre, half) of the crop or None, this frame's detections or None when the detector did not run)."""
        if self.fixed_box is not None:
            return self.crop_for_box(self.fixed_box), None
        if self._prev_crop is not None:
            return self._prev_crop, None
        if self._detector is None:
            # MediaPipe Hands run directly (no legacy mp.solutions graph, gone after 0.10.21).
            from lagc_hand.engines.hands_tracker import HandsTracker

            self._detector = HandsTracker(max_hands=2)
        dets = [o for o in self._detector.process(image, time) if o.box is not None]
        if not dets:
            return None, []
        b = np.stack([o.box for o in dets])
        box = np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()], dtype=np.float64)
        return self.crop_for_box(box), dets

    @staticmethod
    def crop_for_box(box: np.ndarray) -> tuple[np.ndarray, float]:
        """(centre (2,), half side) of the square crop for a hands box."""
        from lagc_hand.net.data.sample import HAND_BBOX_RATIO

        centre = (box[:2] + box[2:]) / 2
        half = max(box[2] - box[0], box[3] - box[1], 8.0) / 2 / HAND_BBOX_RATIO * KEYPOINT_BOX_MARGIN
        return centre, float(half)

    # -- main -----------------------------------------------------------------
    def run_crop(self, image: np.ndarray, centre: np.ndarray, half: float) -> dict[str, np.ndarray]:
        """Network outputs for one crop, as numpy (batch of 1 removed)."""
        import cv2
        import torch

        from lagc_hand.net.data.sample import crop_affine

        aff = crop_affine(centre, half, CROP_SIZE)
        crop = cv2.warpAffine(image, aff, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        x = torch.from_numpy(crop.astype(np.float32).transpose(2, 0, 1) / 255.0)[None].to(self.device)
        with torch.no_grad():
            out = self.model(x)
        return {k: v[0].float().cpu().numpy() for k, v in out.items()}

    def process(self, image: np.ndarray, time: float = 0.0) -> list[HandObservation]:
        if image is None or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError("the engine needs (H, W, 3) uint8 RGB images")
        region, dets = self._region(image, time)
        if region is None:
            self._prev_crop = None
            return []
        centre, half = region
        out = self.run_crop(image, centre, half)
        return self._observations(out, centre, half, dets)

    def hand_scores(self, out: dict[str, np.ndarray], centre: np.ndarray, half: float, dets: Optional[list]) -> np.ndarray:
        """(2,) left, right scores in [0, 1] (module docstring) from one crop's outputs
        (crop pixels) and the frame's detections (None: the detector did not run)."""
        scores = np.zeros(2)
        to_full, origin = 2 * half / CROP_SIZE, centre - half
        for h in range(2):
            v2 = out["vertices2d"][h]
            inside = float(np.mean(np.all((v2 >= 0) & (v2 <= CROP_SIZE), axis=1)))
            extent = float(np.max(v2.max(0) - v2.min(0))) / CROP_SIZE
            if extent < MIN_EXTENT:
                continue
            if dets is None:
                support = float(self._prev_scores[h]) if self.fixed_box is None else 1.0
            else:
                kp = out["joints2d"][h] * to_full + origin
                support = 0.0
                for d in dets:
                    lo, hi = d.box[:2], d.box[2:]
                    pad = DETECTION_SLACK * (hi - lo)
                    frac = float(np.mean(np.all((kp >= lo - pad) & (kp <= hi + pad), axis=1)))
                    same = (d.handedness > 0.5) == (h == 1)
                    support = max(support, frac if same else 0.5 * frac)
            scores[h] = inside * support
        return scores

    def _observations(self, out: dict[str, np.ndarray], centre: np.ndarray, half: float, dets: Optional[list] = None) -> list[HandObservation]:
        from lagc_hand.net.data.sample import crop_box
        from lagc_hand_blender.core.skeleton import PUBLIC_MIDDLE_MCP

        to_full = 2 * half / CROP_SIZE
        origin = centre - half
        scores = self.hand_scores(out, centre, half, dets)
        obs, kept = [], []
        for h in range(2):
            heat = out["heatmaps"][21 * h : 21 * (h + 1)]
            if scores[h] < self.min_score:
                continue
            kp2 = (out["joints2d"][h] * to_full + origin).astype(np.float32)
            root = out["joints"][h, PUBLIC_MIDDLE_MCP]
            box = np.array([kp2[:, 0].min(), kp2[:, 1].min(), kp2[:, 0].max(), kp2[:, 1].max()], np.float32)
            kept.append(out["vertices2d"][h] * to_full + origin)
            obs.append(HandObservation(
                keypoints2d=kp2,
                keypoints3d=(out["joints"][h] - root).astype(np.float32),
                handedness=float(h),
                score=float(scores[h]),
                box=box,
                vertices=(out["vertices"][h] - root).astype(np.float32),
                extra={"engine": "lagc", "output_hand": ("left", "right")[h], "crop_centre": centre.tolist(), "crop_half": half,
                       "tracked": dets is None and self.fixed_box is None,
                       "heatmap_score": float(np.clip(heat.reshape(21, -1).max(1).mean(), 0.0, 1.0))},
            ))
        # Track: the next frame's crop is the training box around both hands' projected vertices.
        if self.fixed_box is None:
            self._prev_scores = scores
            self._prev_crop = crop_box(np.concatenate(kept)) if len(kept) == 2 else None
        return obs

    def reset(self) -> None:
        self._prev_crop = None
        self._prev_scores = np.ones(2)
        if self._detector is not None and hasattr(self._detector, "reset"):
            self._detector.reset()

    def close(self) -> None:
        if self._own_detector and self._detector is not None:
            self._detector.close()
        self._detector = None

    def __enter__(self) -> "LagcEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

