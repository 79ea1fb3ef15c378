"""The camera of a reconstruction, from what the user knows about it.

A focal length or field of view gives square pixels with the principal point at
the image centre ``(W/2, H/2)``; ``intrinsics`` (fx, fy, cx, cy) or a
calibration file give the full pinhole matrix, and a calibration file may add
lens distortion, which :func:`undistort_keypoints` removes from the detector's
2D keypoints so that everything downstream is the pinhole ``K``.

Pixel convention: origin at the top-left corner of the top-left pixel (the
HandMotion convention, :mod:`lagc_hand_blender.core.camera`).  OpenCV
calibration files use the centre of the top-left pixel; they are converted.
The pinhole maths itself lives in :mod:`lagc_hand_blender.core.camera`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from lagc_hand.errors import InputError
from lagc_hand_blender.core import camera as pinhole
from lagc_hand_blender.core.camera import DEFAULT_HFOV_DEG, SENSOR_WIDTH_MM, horizontal_fov_deg  # noqa: F401
from lagc_hand_blender.core.options_spec import SPECS, OptionError, check_camera

#: Image sizes that differ from the calibration's by more than this aspect ratio are refused.
_ASPECT_TOLERANCE = 0.01


@dataclass
class CameraModel:
    """The camera of one video.

    K:          (3, 3) float64 pinhole matrix, pixels (HandMotion convention).
    distortion: (N,) float64 OpenCV distortion coefficients (k1, k2, p1, p2[, k3, ...]);
                empty = none.
    source:     how K was obtained: ``"default"``, ``"focal_mm"``, ``"fov_deg"``,
                ``"intrinsics"`` or ``"calibration"``.
    """

    K: np.ndarray
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(0))
    source: str = "default"

    def describe(self) -> dict:
        """JSON-able record for the motion's metadata."""
        return {"source": self.source, "K": np.asarray(self.K).tolist(),
                "distortion": np.asarray(self.distortion).tolist()}


def intrinsics_matrix(
    width: int,
    height: int,
    focal_mm: Optional[float] = None,
    fov_deg: Optional[float] = None,
) -> np.ndarray:
    """(3, 3) float64 centred K in pixels.

    focal_mm: 35 mm-equivalent focal length (36 mm sensor width), wins over fov_deg.
    fov_deg:  horizontal field of view in degrees.
    Neither: :data:`DEFAULT_HFOV_DEG`.  Bounds: those of the option declaration.
    """
    _check_size(width, height)
    focal, fov = SPECS["focal_mm"], SPECS["fov_deg"]
    if focal_mm is not None:
        if not (math.isfinite(focal_mm) and focal.minimum <= focal_mm <= focal.maximum):
            raise InputError(f"focal length {focal_mm} mm is out of range ({focal.minimum:g} to "
                             f"{focal.maximum:g} mm, 35 mm equivalent)")
    elif fov_deg is not None and not (math.isfinite(fov_deg) and fov.minimum <= fov_deg <= fov.maximum):
        raise InputError(f"field of view {fov_deg} degrees is out of range ({fov.minimum:g} to {fov.maximum:g})")
    return pinhole.intrinsics_for(width, height, focal_mm, None if fov_deg is None else float(fov_deg))


def resolve_camera(
    width: int,
    height: int,
    focal_mm: Optional[float] = None,
    fov_deg: Optional[float] = None,
    intrinsics: Optional[Sequence[float]] = None,
    calibration: Optional[str] = None,
) -> CameraModel:
    """The camera of a ``width`` x ``height`` video from the camera options.

    ``intrinsics`` (fx, fy, cx, cy) and ``calibration`` each give the whole
    camera and exclude the other options; otherwise :func:`intrinsics_matrix`.
    Raises :class:`InputError` with a message for the user.
    """
    _check_size(width, height)
    try:
        check_camera({"focal_mm": focal_mm, "fov_deg": fov_deg, "intrinsics": intrinsics,
                      "calibration": calibration})
    except OptionError as exc:
        raise InputError(str(exc)) from None
    if calibration is not None:
        return load_calibration(calibration, (width, height))
    if intrinsics is not None:
        try:
            return CameraModel(pinhole.pinhole(*(float(v) for v in intrinsics)), source="intrinsics")
        except (pinhole.CameraError, TypeError) as exc:
            raise InputError(f"intrinsics {intrinsics!r}: {exc}") from None
    source = "focal_mm" if focal_mm is not None else "fov_deg" if fov_deg is not None else "default"
    return CameraModel(intrinsics_matrix(width, height, focal_mm, fov_deg), source=source)


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"image size {width}x{height} is not positive")


# --------------------------------------------------------------------------- calibration files


def load_calibration(path: str | Path, image_size: tuple[int, int]) -> CameraModel:
    """Read an OpenCV calibration (YAML/XML via ``cv2.FileStorage``, or JSON) for a
    video of ``image_size`` (W, H).

    OpenCV files: ``camera_matrix`` (3x3) and optional ``distortion_coefficients``,
    ``image_width`` / ``image_height``, as OpenCV's calibration sample writes them.
    JSON: ``{"K": 3x3, "distortion": [...], "image_size": [W, H]}`` (``camera_matrix``
    and ``distortion_coefficients`` are accepted as names too); all but K optional.
    A calibration for another resolution of the same aspect ratio is scaled;
    another aspect ratio is an error.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"calibration file {str(p)!r} does not exist")
    if p.suffix.lower() == ".json":
        K, dist, size = _read_json(p)
    else:
        K, dist, size = _read_opencv(p)
    try:
        K = pinhole.check_intrinsics(K)
    except pinhole.CameraError as exc:
        raise InputError(f"calibration file {p.name}: {exc}") from None
    if dist.size not in (0, 4, 5, 8, 12, 14) or not np.all(np.isfinite(dist)):
        raise InputError(f"calibration file {p.name}: distortion must be 4, 5, 8, 12 or 14 finite numbers "
                         f"(OpenCV's k1, k2, p1, p2[, k3, ...]), got {dist.size}")
    K = pinhole.opencv_to_corner(K)
    if size is not None and tuple(size) != tuple(image_size):
        K = _rescale(K, size, image_size, p.name)
    return CameraModel(K, dist, source="calibration")


def _read_json(p: Path):
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"calibration file {p.name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"calibration file {p.name}: expected a JSON object with a 'K' entry")
    K = data.get("K", data.get("camera_matrix"))
    if K is None:
        raise InputError(f"calibration file {p.name}: no 'K' (3x3 camera matrix) in it")
    dist = data.get("distortion", data.get("distortion_coefficients", []))
    size = data.get("image_size")
    try:
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        dist = np.asarray(dist if dist is not None else [], dtype=np.float64).ravel()
        size = None if size is None else (int(size[0]), int(size[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise InputError(f"calibration file {p.name}: K must be 3x3 numbers, distortion a list of numbers, "
                         f"image_size [W, H] ({exc})") from None
    return K, dist, size


def _read_opencv(p: Path):
    try:
        K, dist, size = _read_filestorage(p)
    except (cv2.error, SystemError) as exc:  # cv2 reports parse errors as SystemError from the constructor
        cause = exc.__cause__ if isinstance(exc, SystemError) and exc.__cause__ is not None else exc
        detail = str(getattr(cause, "err", "") or cause).strip().splitlines()[-1:] or [""]
        raise InputError(f"calibration file {p.name} is not a readable OpenCV YAML/XML file ({detail[0]})") from None
    if K is None:
        raise InputError(f"calibration file {p.name}: no 'camera_matrix' in it")
    if K.shape != (3, 3):
        raise InputError(f"calibration file {p.name}: camera_matrix is {K.shape[0]}x{K.shape[1]}, not 3x3")
    dist = np.zeros(0) if dist is None else np.asarray(dist, np.float64).ravel()
    return np.asarray(K, np.float64), dist, size


def _read_filestorage(p: Path):
    fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_READ)
    try:
        if not fs.isOpened():
            raise InputError(f"calibration file {p.name} could not be read as OpenCV YAML/XML")
        K = fs.getNode("camera_matrix").mat()
        dist_node = fs.getNode("distortion_coefficients")
        dist = dist_node.mat() if not dist_node.empty() else None
        w, h = fs.getNode("image_width"), fs.getNode("image_height")
        size = (int(w.real()), int(h.real())) if not w.empty() and not h.empty() else None
    finally:
        fs.release()
    return K, dist, size


def _rescale(K: np.ndarray, size, image_size, name: str) -> np.ndarray:
    (w0, h0), (w, h) = size, image_size
    if w0 <= 0 or h0 <= 0 or abs((w / h) / (w0 / h0) - 1.0) > _ASPECT_TOLERANCE:
        raise InputError(f"calibration file {name} is for {w0}x{h0} images, the video is {w}x{h} "
                         f"(another aspect ratio: calibrate this resolution)")
    s = w / w0
    # Corner convention: pixel edges scale, so the principal point scales with them.
    return pinhole.pinhole(K[0, 0] * s, K[1, 1] * s, K[0, 2] * s, K[1, 2] * s)


# --------------------------------------------------------------------------- undistortion


def undistort_keypoints(keypoints2d: np.ndarray, cam: CameraModel, present: Optional[np.ndarray] = None) -> np.ndarray:
    """Detector keypoints (T, 21, 2) pixels in the distorted image -> where the
    pinhole ``K`` puts them (same shape, float32).  Frames where ``present`` (T,)
    is false are left as they are (zeros by convention); without distortion this
    is a copy."""
    out = np.array(keypoints2d, dtype=np.float32)
    if cam.distortion.size == 0 or not np.any(cam.distortion) or out.size == 0:
        return out
    rows = np.ones(out.shape[0], bool) if present is None else np.asarray(present, bool)
    if not rows.any():
        return out
    K_cv = pinhole.corner_to_opencv(cam.K)
    pts = out[rows].reshape(-1, 1, 2).astype(np.float64) - 0.5
    und = cv2.undistortPoints(pts, K_cv, cam.distortion, P=K_cv)
    out[rows] = (und.reshape(out[rows].shape) + 0.5).astype(np.float32)
    return out
