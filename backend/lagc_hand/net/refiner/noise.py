"""Detector error model: turn ground-truth two-hand keypoints into what the
engine and tracker would report (pure numpy).

The numbers (:class:`NoiseConfig`) were measured by ``scripts/refiner_noise.py``
(MediaPipe + tracking against the ground truth of the rendered interacting
clips) and live in ``configs/refiner.yaml``'s ``noise:`` section.

Per hand: missing (no track), else detected, followed by optical flow or
bridged (interpolated); per joint: 2D noise in units of the hand's 2D size,
larger for hidden joints, some hidden joints hallucinated far off; 3D
root-relative noise per axis (depth larger) and a per-hand scale error; the
two hands' inputs swapped now and then.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .features import RefinerInput


@dataclass
class NoiseConfig:
    """Detector error model (see the module docstring); names match scripts/refiner_noise.py."""

    missing_seen: float = 0.02       # P(no track) for a hand at least half seen
    missing_hidden: float = 0.3      # P(no track) for a mostly hidden hand
    followed: float = 0.05           # P(followed | present)
    bridged: float = 0.07            # P(bridged | present)
    sigma2d_seen: float = 0.03       # RMS per axis, hand sizes
    sigma2d_hidden: float = 0.09
    hallucinated: float = 0.02       # P(a hidden joint is far off)
    sigma3d_xy: float = 0.01         # metres, root-relative, per axis
    sigma3d_z: float = 0.02
    scale_sigma: float = 0.05        # spread of log(size ratio)
    scale_bias: float = 0.0          # mean log(size ratio)
    swap: float = 0.0                # P(the two hands' inputs exchanged)
    conf_detected: float = 0.88
    conf_followed: float = 0.5
    conf_bridged: float = 0.2
    #: noise factor of followed / bridged hands relative to detected ones
    degraded_factor: float = 2.0

    @classmethod
    def from_dict(cls, d: dict | None) -> "NoiseConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            from lagc_hand.errors import InputError

            raise InputError(f"unknown noise keys: {', '.join(sorted(unknown))}")
        return cls(**{k: float(v) for k, v in d.items()})


def _size(k: np.ndarray) -> np.ndarray:
    """(..., 21, D) -> (...) wrist->middle MCP + index->pinky MCP length."""
    return np.linalg.norm(k[..., 9, :] - k[..., 0, :], axis=-1) + np.linalg.norm(k[..., 5, :] - k[..., 17, :], axis=-1)


def corrupt(rng: np.random.Generator, keypoints: np.ndarray, visible: np.ndarray, K: np.ndarray,
            cfg: NoiseConfig) -> RefinerInput:
    """Simulated detector output for N pairs.

    keypoints: (N, 2, 21, 3) ground truth, camera frame, metres (hand 0 = left).
    visible: (N, 2, 21) bool joint seen (:func:`lagc_hand.synth.refiner_pairs.joint_visibility`).
    K: (N, 3, 3) intrinsics.  Returns a :class:`RefinerInput` of shape (N, ...).
    """
    n = len(keypoints)
    f = np.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None, None]  # (N,1,1,2)
    c = K[:, None, None, :2, 2]
    p2 = keypoints[..., :2] / keypoints[..., 2:3]  # normalised image coordinates, exact
    seen = visible.mean(-1)  # (N, 2)
    miss = rng.random((n, 2)) < np.where(seen >= 0.5, cfg.missing_seen, cfg.missing_hidden)
    u = rng.random((n, 2))
    bridged = ~miss & (u < cfg.bridged)
    followed = ~miss & ~bridged & (u < cfg.bridged + cfg.followed)
    degrade = np.where(bridged | followed, cfg.degraded_factor, 1.0)[..., None, None]  # (N,2,1,1)
    # 2D: noise in hand sizes (the pixel size cancels: normalised coordinates).
    size2 = _size(p2)[..., None, None]
    sig2 = np.where(visible, cfg.sigma2d_seen, cfg.sigma2d_hidden)[..., None]
    n2 = rng.normal(0, 1, p2.shape) * sig2 * size2 * degrade
    hall = ~visible & (rng.random(visible.shape) < cfg.hallucinated)
    n2 = np.where(hall[..., None], rng.normal(0, 0.6, p2.shape) * size2, n2)
    q2 = p2 + n2
    # 3D: root-relative, scale error per hand, per-axis noise (depth larger).
    rel = keypoints - keypoints[:, :, :1]
    scale = np.exp(rng.normal(cfg.scale_bias, cfg.scale_sigma, (n, 2)))[..., None, None]
    sig3 = np.array([cfg.sigma3d_xy, cfg.sigma3d_xy, cfg.sigma3d_z])
    hidden_factor = np.where(visible, 1.0, cfg.sigma2d_hidden / max(cfg.sigma2d_seen, 1e-6))[..., None]
    q3 = rel * scale + rng.normal(0, 1, rel.shape) * sig3 * np.sqrt(hidden_factor) * degrade
    q3 = q3 - q3[:, :, :1]
    conf = np.where(bridged, cfg.conf_bridged, np.where(followed, cfg.conf_followed, cfg.conf_detected))
    conf = np.clip(conf + rng.normal(0, 0.05, (n, 2)), 0.05, 1.0)
    conf = np.broadcast_to(conf[..., None], (n, 2, 21)).copy()
    swap = rng.random(n) < cfg.swap
    for a in (q2, q3, conf):
        a[swap] = a[swap][:, ::-1]
    flags = np.stack([followed, bridged, miss], -1)
    q2 = np.where(miss[..., None, None], 0.0, q2)
    q3 = np.where(miss[..., None, None], 0.0, q3)
    conf = np.where(miss[..., None], 0.0, conf)
    del f, c  # normalised coordinates need no pixels
    return RefinerInput(q2.astype(np.float32), q3.astype(np.float32), conf.astype(np.float32), flags)
