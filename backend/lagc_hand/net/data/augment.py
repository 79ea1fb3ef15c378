"""IntagHand-style training augmentation of a crop: scale, in-plane rotation and
translation jitter of the crop box, per-channel colour gains.

The rotation is a rotation of the CAMERA about its optical axis, not of the
picture alone, so the 3D ground truth stays exact: with ``Rz`` the rotation by
``angle`` about the camera z axis (camera frame = OpenCV: x right, y down,
z forward), a camera point ``X`` becomes ``Rz X`` (same depth), and its pixel
``p = K X / z`` moves to ``K Rz K^-1 p`` -- an affine map of the full image
(exactly a rotation about the principal point when fx = fy).  The crop box is
then cut around the rotated projections and jittered in scale and position,
so the hands stay in view (up to the translation jitter).

Pure numpy maths; the image warp itself is done by the caller (cv2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AugmentConfig:
    """Ranges of the random augmentation (``enabled`` false: none).

    scale:       the crop's half side is multiplied by ``2 ** U(-scale, scale)``
                 (log-uniform, so zooming in and out are equally likely);
    rotation:    in-plane rotation U(-rotation, rotation), degrees;
    translation: the crop centre moves by U(-t, t) x the crop's half side, per axis;
    colour:      each RGB channel is multiplied by U(1 - colour, 1 + colour)."""

    enabled: bool = True
    scale: float = 0.25
    rotation: float = 90.0
    translation: float = 0.1
    colour: float = 0.2


@dataclass
class Augmentation:
    """One draw: angle (radians), scale (> 0), shift (2,) in half-sides, gains (3,) RGB."""

    angle: float = 0.0
    scale: float = 1.0
    shift: np.ndarray | None = None
    gains: np.ndarray | None = None

    @staticmethod
    def draw(rng: np.random.Generator, cfg: AugmentConfig) -> "Augmentation":
        if not cfg.enabled:
            return Augmentation()
        return Augmentation(
            angle=float(np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation))),
            scale=float(2.0 ** rng.uniform(-cfg.scale, cfg.scale)),
            shift=rng.uniform(-cfg.translation, cfg.translation, 2),
            gains=rng.uniform(1 - cfg.colour, 1 + cfg.colour, 3),
        )


def rotation_z(angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about the camera's z axis (image
    x towards image y, i.e. clockwise on screen since y points down)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def camera_roll(k: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Intrinsics k (3, 3), angle (radians) -> (Rz (3, 3) applied to camera
    points, (2, 3) affine taking old full-image pixels to the rolled camera's pixels)."""
    rz = rotation_z(angle)
    m = k @ rz @ np.linalg.inv(k)
    return rz, m[:2] / m[2, 2]


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) affines -> (2, 3) ``outer o inner`` (inner applied first)."""
    a = np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]])
    return a[:2]


def jitter_box(centre: np.ndarray, half: float, aug: Augmentation) -> tuple[np.ndarray, float]:
    """Crop box (centre (2,), half side) moved by ``aug.shift`` half-sides and scaled by ``aug.scale``."""
    shift = np.zeros(2) if aug.shift is None else np.asarray(aug.shift, dtype=np.float64)
    return np.asarray(centre, dtype=np.float64) + shift * half, float(half) * aug.scale


def colour_jitter(image: np.ndarray, aug: Augmentation) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> uint8 with per-channel gains applied (clipped)."""
    if aug.gains is None:
        return image
    out = image.astype(np.float32) * np.asarray(aug.gains, dtype=np.float32)[None, None, :]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
