"""The refiner's input and its feature encoding (pure numpy / torch).

Coordinates: camera axes (OpenCV: x right, y down, z forward), metres;
hand 0 = left, hand 1 = right; keypoints in public order (wrist first).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


#: Per-joint feature width: 3D (3), 2D about the root in metres (2), 2D (2), confidence (1), flags (3).
FEATURES = 11
#: Flag columns of :attr:`RefinerInput.flags`.
FLAGS = ("followed", "bridged", "missing")


@dataclass
class RefinerInput:
    """Both hands' detector output for N frames.

    keypoints2d: (N, 2, 21, 2) float32 normalised image coordinates
                 ``((u - cx) / fx, (v - cy) / fy)``.
    keypoints3d: (N, 2, 21, 3) float32 metres, root-relative (wrist = 0), camera axes.
    confidence:  (N, 2, 21) float32 in [0, 1] per joint (0 where missing).
    flags:       (N, 2, 3) bool :data:`FLAGS` (followed, bridged, missing).
    A missing hand has zeros in every array but its flag.
    """

    keypoints2d: np.ndarray
    keypoints3d: np.ndarray
    confidence: np.ndarray
    flags: np.ndarray

    def __len__(self) -> int:
        return len(self.keypoints2d)


def normalise_pixels(keypoints2d: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 2) pixels -> normalised image coordinates with intrinsics K (3, 3)."""
    return (np.asarray(keypoints2d, np.float64) - K[:2, 2]) / np.array([K[0, 0], K[1, 1]])


def initial_roots(k2: torch.Tensor, k3: torch.Tensor) -> torch.Tensor:
    """Weak-perspective wrist positions (..., 2, 3), metres: depth = the hand's 3D
    extent across the image plane over its 2D extent, wrist along its ray.

    k2: (..., 2, 21, 2) normalised; k3: (..., 2, 21, 3) root-relative.  Zeros for a
    missing hand (all-zero input)."""
    e3 = (k3[..., :2] - k3[..., :1, :2]).norm(dim=-1).sum(-1)
    e2 = (k2 - k2[..., :1, :]).norm(dim=-1).sum(-1)
    z = torch.where(e2 > 1e-6, e3 / e2.clamp_min(1e-6), torch.zeros_like(e2)).clamp(0.0, 5.0)
    return torch.cat([k2[..., 0, :] * z[..., None], z[..., None]], -1)


def encode(x: RefinerInput) -> tuple[torch.Tensor, torch.Tensor]:
    """-> features (N, 2, 21, :data:`FEATURES`) float32 and initial roots (N, 2, 3) metres."""
    k2 = torch.as_tensor(x.keypoints2d, dtype=torch.float32)
    k3 = torch.as_tensor(x.keypoints3d, dtype=torch.float32)
    conf = torch.as_tensor(x.confidence, dtype=torch.float32)
    flags = torch.as_tensor(np.asarray(x.flags), dtype=torch.float32)
    root = initial_roots(k2, k3)
    local2 = (k2 - k2[..., :1, :]) * root[..., 2, None, None]  # ~metres across the view
    feats = torch.cat([k3 * 10.0, local2 * 10.0, k2, conf[..., None],
                       flags[..., None, :].expand(*conf.shape, 3)], -1)
    return feats, root
