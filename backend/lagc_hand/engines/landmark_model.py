"""MediaPipe's hand landmark model run directly, on a rotated region we choose.

The ``mediapipe==0.10.21`` wheel bundles ``hand_landmark_full.tflite``; the
LiteRT interpreter (``ai-edge-litert``) runs it without MediaPipe's graph, so
the caller decides where to look (a predicted region, a body wrist, a grid
cell) and the engine does not depend on the legacy ``mp.solutions`` API.

Model contract (that of MediaPipe's ``hand_landmark_cpu`` graph, checked
against MediaPipe's own output in ``tests/test_landmark_model.py``):

* input (1, 224, 224, 3) float32 RGB in [0, 1]: the square region
  :class:`Roi` resampled bilinearly, borders replicated;
* ``Identity``   (1, 63): 21 x (x, y, z) in input pixels; z is relative depth
  in input pixels x 0.4 (MediaPipe's ``normalize_z: 0.4``);
* ``Identity_1`` (1, 1): hand presence in [0, 1];
* ``Identity_2`` (1, 1): P(label "Left") of MediaPipe's selfie-convention
  handedness, i.e. P(right hand) in an un-mirrored image;
* ``Identity_3`` (1, 63): 21 x (x, y, z) world landmarks in metres, axes of
  the *region* (rotated with it), origin near the hand's centre.

:func:`roi_from_keypoints` is MediaPipe's landmarks -> next-frame region rule
(tracking); :func:`roi_from_palm` is its palm-detection -> region rule.
Pixel coordinates are full-image pixels, x right, y down.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from lagc_hand.engines import mp_geometry as mpg
from lagc_hand.engines.base import HandObservation
from lagc_hand.engines.dedup import keypoint_box
from lagc_hand.errors import EngineUnavailable

INPUT_SIZE = 224
#: The model's z is relative depth x this factor (MediaPipe's ``normalize_z``).
Z_NORMALIZE = 0.4
#: Keypoints MediaPipe uses for the tracking region (the stable ones: no finger tips).
ROI_POINTS = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])


@dataclass(frozen=True)
class Roi:
    """A square image region turned by ``angle``.

    cx, cy: centre (pixels); side: side length (pixels); angle: radians, the
    region's +x axis is the image's +x turned by ``angle`` towards +y (MediaPipe's
    ``NormalizedRect.rotation``).  With angle 0 the region is upright; a hand
    whose fingers point along -y of the region is what the model expects.
    height: the side along the region's y (pixels) where it differs from ``side``
    in the last float32 bits (regions from MediaPipe's normalised-rect arithmetic,
    :meth:`from_normalized`); None = ``side``.
    """

    cx: float
    cy: float
    side: float
    angle: float = 0.0
    height: Optional[float] = None

    @classmethod
    def from_normalized(cls, rect: mpg.Rect, W: int, H: int) -> "Roi":
        """The region of MediaPipe's float32 ``NormalizedRect`` ``rect`` in a W x H image.
        Pixels = float32 value x size, exact in float64, so :meth:`normalized` gives
        ``rect`` back bit for bit."""
        xc, yc, w, h, rot = (float(v) for v in rect)
        return cls(xc * W, yc * H, w * W, rot, h * H)

    def normalized(self, W: int, H: int) -> mpg.Rect:
        """As MediaPipe's float32 ``NormalizedRect`` in a W x H image."""
        h = self.side if self.height is None else self.height
        return (mpg.F32(self.cx / W), mpg.F32(self.cy / H), mpg.F32(self.side / W), mpg.F32(h / H),
                mpg.F32(self.angle))

    def matrix(self, size: int = INPUT_SIZE) -> np.ndarray:
        """(2, 3) affine map from region pixels (0..size) to image pixels."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        k = self.side / size
        R = np.array([[c, -s], [s, c]]) * k
        t = np.array([self.cx, self.cy]) - R @ np.array([size / 2.0, size / 2.0])
        return np.hstack([R, t[:, None]])

    def to_image(self, pts: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
        """(N, 2) region pixels -> (N, 2) image pixels."""
        M = self.matrix(size)
        return np.asarray(pts, np.float64) @ M[:, :2].T + M[:, 2]


def crop(image: np.ndarray, roi: Roi, size: int = INPUT_SIZE, border: Optional[int] = None) -> np.ndarray:
    """(size, size, 3) uint8 crop of ``roi`` from ``image`` (H, W, 3), bilinear; ``border``:
    an OpenCV border mode, default replicated (the landmark models), ``cv2.BORDER_CONSTANT``
    pads black (the detectors' letterbox).

    MediaPipe's ``ImageToTensorCalculator`` on CPU step for step: the region's corners
    from ``cv2.RotatedRect`` (float32, angle in degrees) sent onto the output square's
    corners by ``cv2.getPerspectiveTransform`` and ``cv2.warpPerspective``.  Why not the
    equal affine map through ``cv2.warpAffine``: its fixed-point rounding differs (up to 3
    grey levels on ~0.2 % of the pixels), which moved landmarks by 0.01 px typically and
    0.6 px at worst and presence by up to 0.005 -- enough to lose a hand whose presence is
    near the 0.5 cut-off where MediaPipe keeps it.  This crop gives MediaPipe's landmarks
    on MediaPipe's own regions to 1e-5 px (``tests/test_hands_tracker.py``)."""
    import cv2

    side, _, _ = mpg.square_padding(roi.side, roi.side if roi.height is None else roi.height)
    degrees = float(mpg.F32(mpg.F32(roi.angle) * mpg.F32(180.0))) / np.pi  # float x float, then / M_PI
    rect = cv2.RotatedRect((float(mpg.F32(roi.cx)), float(mpg.F32(roi.cy))), (float(side), float(side)), degrees)
    src = np.asarray(rect.points(), np.float32)  # bottom-left, top-left, top-right, bottom-right
    dst = np.array([[0, size], [0, 0], [size, 0], [size, size]], np.float32)
    M = cv2.getPerspectiveTransform(src, dst)
    mode = cv2.BORDER_REPLICATE if border is None else int(border)
    return cv2.warpPerspective(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=0)


def _normalize_radians(a: float) -> float:
    return float(a - 2 * np.pi * np.floor((a + np.pi) / (2 * np.pi)))


def _rect_to_roi(cx: float, cy: float, w: float, h: float, angle: float, scale: float, shift_y: float) -> Roi:
    """MediaPipe's RectTransformationCalculator (shift along the rect's own y, square_long, scale)."""
    cx += -h * shift_y * np.sin(angle)
    cy += h * shift_y * np.cos(angle)
    return Roi(float(cx), float(cy), float(max(w, h) * scale), float(angle))


def roi_from_keypoints(kp2d: np.ndarray, image_size: Optional[tuple[int, int]] = None, scale: float = 2.0,
                       shift_y: float = -0.1) -> Roi:
    """The region MediaPipe tracks a hand with in the next frame, from (21, 2)
    keypoints (pixels): rotation from the wrist to the index/middle/ring MCP
    average, box of the stable keypoints in that rotated frame, moved by
    ``shift_y`` x its height along the hand, squared, scaled by ``scale``.

    image_size: (W, H) of the image the keypoints are in: the arithmetic is then
    MediaPipe's float32 arithmetic on normalised coordinates bit for bit
    (:mod:`.mp_geometry`; keypoints from :meth:`HandLandmarkModel.run` are
    normalised float32 values x size, recovered exactly).  None: the same
    arithmetic in pixel units (a region as good, not bit-equal to MediaPipe's)."""
    W, H = image_size or (1, 1)
    n = (np.asarray(kp2d, np.float64) / np.array([W, H], np.float64)).astype(mpg.F32)
    p = n[ROI_POINTS]  # MediaPipe's 12-point subset: its indices 4, 6, 8 are MCPs 5, 9, 13
    two = mpg.F32(2.0)
    x1 = ((p[4, 0] + p[8, 0]) / two + p[6, 0]) / two
    y1 = ((p[4, 1] + p[8, 1]) / two + p[6, 1]) / two
    rotation = mpg.rotation_from_points(p[0, 0], p[0, 1], x1, y1, W, H)
    rect = mpg.landmarks_to_rect(p, rotation, W, H)
    return Roi.from_normalized(mpg.transform_rect(rect, W, H, scale, shift_y), W, H)


def roi_from_palm(box: np.ndarray, wrist: np.ndarray, middle: np.ndarray) -> Roi:
    """MediaPipe's palm-detection -> landmark region: box (x0, y0, x1, y1) of the palm
    and its wrist / middle-finger-base points (pixels); scale 2.6, shift -0.5."""
    angle = _normalize_radians(0.5 * np.pi - np.arctan2(-(middle[1] - wrist[1]), middle[0] - wrist[0]))
    cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
    return _rect_to_roi(cx, cy, box[2] - box[0], box[3] - box[1], angle, 2.6, -0.5)


def project(lm: np.ndarray, roi: Roi, W: int, H: int) -> np.ndarray:
    """Model output (N, 2) in tensor pixels -> (N, 2) image pixels, as MediaPipe's
    graph does it (float32, normalised coordinates: :func:`.mp_geometry.project_landmarks`);
    the pixels are the normalised float32 values x size (exact in float64)."""
    h = roi.side if roi.height is None else roi.height
    _, pad_x, pad_y = mpg.square_padding(roi.side, h)
    norm = np.asarray(lm, np.float64).astype(mpg.F32) / mpg.F32(INPUT_SIZE)
    pts = mpg.project_landmarks(norm, roi.normalized(W, H), pad_x, pad_y)
    return pts.astype(np.float64) * np.array([W, H], np.float64)


@dataclass
class LandmarkResult:
    """The model's answer on one region.

    keypoints2d: (21, 2) image pixels; depth: (21,) relative depth in image pixels
    (MediaPipe's z, negative = nearer); world: (21, 3) metres, image axes (x right,
    y down, z away), origin near the hand's centre; presence: [0, 1];
    p_right: P(right hand) in the un-mirrored image; roi: where it looked.
    """

    keypoints2d: np.ndarray
    depth: np.ndarray
    world: np.ndarray
    presence: float
    p_right: float
    roi: Roi

    def observation(self, **extra) -> HandObservation:
        """As the engines' :class:`HandObservation` (score = presence)."""
        kp = self.keypoints2d.astype(np.float32)
        return HandObservation(keypoints2d=kp, keypoints3d=self.world.astype(np.float32),
                               handedness=float(np.clip(self.p_right, 0, 1)),
                               score=float(np.clip(self.presence, 0, 1)),
                               box=keypoint_box(kp).astype(np.float32), extra=dict(extra))


def model_path(name: str = "hand_landmark_full.tflite") -> str:
    """Path of a model file bundled in the mediapipe wheel (``modules/*/name``).

    The package is located, not imported: ``import mediapipe`` loads the legacy
    ``mediapipe.python.solutions`` graphs (removed in 0.10.30) and their native
    framework, which the directly run models do not need."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable("the mediapipe package (its bundled models) is not installed here; "
                                "install mediapipe==0.10.21")
    for base in spec.submodule_search_locations:
        root = os.path.join(base, "modules")
        for sub in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            p = os.path.join(root, sub, name)
            if os.path.isfile(p):
                return p
    raise EngineUnavailable(f"{name} is not bundled in this mediapipe ({', '.join(spec.submodule_search_locations)});"
                            " install mediapipe==0.10.21")


class HandLandmarkModel:
    """``hand_landmark_full.tflite`` on chosen regions (one interpreter; calls are serialised)."""

    def __init__(self, path: Optional[str] = None, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except Exception as exc:
            raise EngineUnavailable(f"the LiteRT interpreter cannot be loaded ({exc}); "
                                    "install ai-edge-litert") from None
        self._it = Interpreter(model_path=path or model_path(), num_threads=int(threads))
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._it.get_output_details()}
        self._out = [outs[n] for n in ("Identity", "Identity_1", "Identity_2", "Identity_3")]
        self._lock = threading.Lock()
        self.calls = 0

    def run(self, image: np.ndarray, roi: Roi, flip: bool = False) -> LandmarkResult:
        """Run the model on ``roi`` of ``image`` ((H, W, 3) uint8 RGB).

        flip: mirror the crop left-right before the model and undo it on the
        output (the 3D hand is un-mirrored, the side inverted): the model sometimes
        sees a hand of an interacting pair only in the mirror image.
        """
        patch = crop(image, roi)
        if flip:
            patch = patch[:, ::-1]
        x = (patch.astype(np.float32) * (1.0 / 255.0))[None]
        with self._lock:
            self._it.set_tensor(self._in, np.ascontiguousarray(x))
            self._it.invoke()
            lm, flag, hand, world = (self._it.get_tensor(i).reshape(-1).copy() for i in self._out)
            self.calls += 1
        lm = lm.reshape(21, 3).astype(np.float64)
        world = world.reshape(21, 3).astype(np.float64)
        p_right = float(hand[0])
        if flip:
            lm[:, 0] = INPUT_SIZE - lm[:, 0]
            world[:, 0] = -world[:, 0]
            p_right = 1.0 - p_right
        c, s = np.cos(roi.angle), np.sin(roi.angle)
        world[:, :2] = world[:, :2] @ np.array([[c, s], [-s, c]])  # region axes -> image axes
        return LandmarkResult(keypoints2d=project(lm[:, :2], roi, image.shape[1], image.shape[0]),
                              depth=lm[:, 2] / Z_NORMALIZE * roi.side / INPUT_SIZE,
                              world=world, presence=float(flag[0]), p_right=p_right, roi=roi)

    def run_many(self, image: np.ndarray, rois: Sequence[Roi], flip: bool = False) -> list[LandmarkResult]:
        return [self.run(image, r, flip) for r in rois]
