"""MediaPipe Hands' region arithmetic in float32, operation for operation.

Why bit-exact and not just "the same formula": the tracking loop (landmarks ->
next region -> crop -> landmarks) is chaotic at the scale of OpenCV's bilinear
sampling grid (1/32 pixel).  A region 1e-4 px away from MediaPipe's changes a
few sampled pixels by a grey level, which moves the next landmarks by ~0.005 px,
the next region by more, and after ~15 frames the two trackers look at visibly
different regions (0.5-2 px) -- enough to keep or lose a hand whose presence is
near the 0.5 cut-off.  Computed in float64, our regions were 5e-5 px from
MediaPipe's; computed as here (float32 values, the C++ evaluation order, libm's
``cosf`` / ``sinf`` / ``atan2f`` / ``expf``) they are identical, and so is every later frame
(``tests/test_hands_tracker.py``).

Rects are MediaPipe's ``NormalizedRect``: (x_center, y_center, width, height,
rotation) as float32, x and width as fractions of the image width W, y and height
of the image height H, rotation in radians.  Landmarks are (N, 2) float32
normalised the same way.  The formulas are those of MediaPipe's
``HandLandmarksToRectCalculator``, ``RectTransformationCalculator`` (normalised
rect, ``square_long``), ``ImageToTensorCalculator`` (``keep_aspect_ratio``
padding), ``LandmarkLetterboxRemovalCalculator`` and
``LandmarkProjectionCalculator``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from typing import Callable, Optional

import numpy as np

F32 = np.float32
#: A NormalizedRect: (x_center, y_center, width, height, rotation), float32.
Rect = tuple


def _libm() -> Optional[ctypes.CDLL]:
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        for name in ("cosf", "sinf", "expf"):
            getattr(lib, name).restype = ctypes.c_float
            getattr(lib, name).argtypes = [ctypes.c_float]
        lib.atan2f.restype = ctypes.c_float
        lib.atan2f.argtypes = [ctypes.c_float, ctypes.c_float]
        return lib
    except (OSError, AttributeError):
        return None


_LIBM = _libm()


def _f32_function(name: str, fallback: Callable) -> Callable:
    """libm's float32 function (what MediaPipe's ``std::cos(float)`` etc. call);
    without a C math library, the float64 value rounded (equal but for rare last-bit
    differences).  numpy's own float32 ``cos`` is not used: its SIMD version is off
    by one bit often enough to make the tracker drift."""
    fn = getattr(_LIBM, name, None) if _LIBM is not None else None
    if fn is not None:
        return lambda *a: F32(fn(*(float(v) for v in a)))
    return lambda *a: F32(fallback(*(float(v) for v in a)))


cosf = _f32_function("cosf", math.cos)
sinf = _f32_function("sinf", math.sin)
atan2f = _f32_function("atan2f", math.atan2)
expf = _f32_function("expf", math.exp)


def normalize_radians(angle: float) -> np.float32:
    """MediaPipe's ``NormalizeRadians`` (float argument, double arithmetic, float result):
    the angle wrapped into [-pi, pi)."""
    a = float(F32(angle))
    return F32(a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi)))


def rotation_from_points(x0, y0, x1, y1, W: int, H: int) -> np.float32:
    """The rect rotation that turns the normalised direction (x0, y0) -> (x1, y1) to
    point up: ``NormalizeRadians(pi/2 - atan2(-(y1 - y0), x1 - x0))`` with the points
    scaled to pixels (float32)."""
    x0, y0, x1, y1 = F32(x0) * F32(W), F32(y0) * F32(H), F32(x1) * F32(W), F32(y1) * F32(H)
    return normalize_radians(F32(math.pi * 0.5) - atan2f(-(y1 - y0), x1 - x0))


def landmarks_to_rect(pts: np.ndarray, rotation: float, W: int, H: int) -> Rect:
    """The rect around normalised points ``pts`` (N, 2) float32 in the frame turned by
    ``rotation`` (``HandLandmarksToRectCalculator``, not yet scaled)."""
    p = np.asarray(pts, F32)
    tiny = np.finfo(F32).tiny  # MediaPipe starts its maxima at numeric_limits<float>::min()
    ax = (max(tiny, p[:, 0].max()) + p[:, 0].min()) / F32(2)
    ay = (max(tiny, p[:, 1].max()) + p[:, 1].min()) / F32(2)
    rot = F32(rotation)
    rev = normalize_radians(-rot)
    ox, oy = (p[:, 0] - ax) * F32(W), (p[:, 1] - ay) * F32(H)
    cr, sr = cosf(rev), sinf(rev)
    px, py = ox * cr - oy * sr, ox * sr + oy * cr
    mx, my = max(tiny, px.max()), max(tiny, py.max())
    pcx, pcy = (mx + px.min()) / F32(2), (my + py.min()) / F32(2)
    c, s = cosf(rot), sinf(rot)
    cx = pcx * c - pcy * s + F32(W) * ax
    cy = pcx * s + pcy * c + F32(H) * ay
    return (cx / F32(W), cy / F32(H), (mx - px.min()) / F32(W), (my - py.min()) / F32(H), rot)


def transform_rect(rect: Rect, W: int, H: int, scale: float, shift_y: float) -> Rect:
    """``RectTransformationCalculator`` on a normalised rect: shift along the rect's own
    y by ``shift_y`` x its height, make it square (long side, in pixels), scale."""
    xc, yc, w, h, rot = (F32(v) for v in rect)
    Wf, Hf, sy = F32(W), F32(H), F32(shift_y)
    if rot == 0:
        yc = yc + h * sy
    else:
        zero = F32(0.0)  # shift_x: its terms still take part in MediaPipe's sums
        xc = xc + (Wf * w * zero * cosf(rot) - Hf * h * sy * sinf(rot)) / Wf
        yc = yc + (Wf * w * zero * sinf(rot) + Hf * h * sy * cosf(rot)) / Hf
    long_side = max(w * Wf, h * Hf)
    return (xc, yc, long_side / Wf * F32(scale), long_side / Hf * F32(scale), rot)


def square_padding(w_px: float, h_px: float) -> tuple[np.float32, np.float32, np.float32]:
    """``ImageToTensorCalculator``'s ``keep_aspect_ratio`` for a square tensor: (side of
    the padded square region in pixels, horizontal padding, vertical padding) -- the
    paddings are fractions of the tensor on each side (about 1e-8 here: a square rect's
    pixel width and height differ in the last float32 bits)."""
    w, h = F32(w_px), F32(h_px)
    roi_aspect = h / w
    if F32(1.0) > roi_aspect:
        return w, F32(0.0), (F32(1.0) - roi_aspect / F32(1.0)) / F32(2.0)
    return h / F32(1.0), (F32(1.0) - F32(1.0) / roi_aspect) / F32(2.0), F32(0.0)


def project_landmarks(lm: np.ndarray, rect: Rect, pad_x: float, pad_y: float) -> np.ndarray:
    """Model landmarks ``lm`` (N, 2) float32, normalised to the tensor ([0, 1]), -> normalised
    image coordinates (N, 2) float32: letterbox removal, then the rect's rotation and scale."""
    xc, yc, w, h, rot = (F32(v) for v in rect)
    x = (np.asarray(lm[:, 0], F32) - F32(pad_x)) / (F32(1.0) - (F32(pad_x) + F32(pad_x))) - F32(0.5)
    y = (np.asarray(lm[:, 1], F32) - F32(pad_y)) / (F32(1.0) - (F32(pad_y) + F32(pad_y))) - F32(0.5)
    c, s = cosf(rot), sinf(rot)
    return np.stack([(c * x - s * y) * w + xc, (s * x + c * y) * h + yc], 1).astype(F32)
