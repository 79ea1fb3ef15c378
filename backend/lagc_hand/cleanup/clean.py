"""Clean one hand's fitted motion: despike, bridge short gaps, smooth.

Order: (1) spikes (single-frame jumps of the root that come straight back)
become gaps; (2) gaps up to ``max_gap_s`` seconds are bridged by slerp
(rotations) and linear interpolation (root, 2D keypoints), with reduced
confidence; longer gaps stay absent; (3) Gaussian smoothing of quaternions
and root within each present segment, weighted by confidence.
``strength`` scales the smoothing width and the gap length; 0 returns the raw
motion untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lagc_hand_blender.core import filters

#: Confidence given to bridged frames, relative to the lower of their two neighbours.
FILLED_CONFIDENCE = 0.5


@dataclass
class CleanConfig:
    """strength: 0 = raw, 1 = default.  sigma_s: Gaussian width (seconds) at
    strength 1.  max_gap_s: longest bridged gap at strength 1.  spike_m:
    root jump (metres) that counts as a spike."""

    strength: float = 1.0
    sigma_s: float = 0.05
    max_gap_s: float = 0.25
    spike_m: float = 0.04


@dataclass
class CleanedHand:
    """present, filled, spikes: (T,) bool (filled: bridged frames; spikes: rejected frames).
    confidence: (T,) float32.  quats: (T, 16, 4) float32 unit w-x-y-z.  root: (T, 3) float32.
    keypoints2d: (T, 21, 2) float32.
    raw_quats / raw_root: the raw motion with only the bridged frames filled in
    (the file's presence mask is shared by raw and clean)."""

    present: np.ndarray
    filled: np.ndarray
    spikes: np.ndarray
    confidence: np.ndarray
    quats: np.ndarray
    root: np.ndarray
    keypoints2d: np.ndarray
    raw_quats: np.ndarray
    raw_root: np.ndarray


def clean_hand(
    present: np.ndarray,
    confidence: np.ndarray,
    quats: np.ndarray,
    root: np.ndarray,
    keypoints2d: np.ndarray,
    fps: float,
    config: CleanConfig | None = None,
) -> CleanedHand:
    """present (T,) bool, confidence (T,), quats (T,16,4), root (T,3) metres camera frame,
    keypoints2d (T,21,2) pixels, fps > 0."""
    cfg = config or CleanConfig()
    present = np.asarray(present, bool)
    T = len(present)
    q = np.asarray(quats, np.float64).copy()
    r = np.asarray(root, np.float64).copy()
    k2 = np.asarray(keypoints2d, np.float64).copy()
    conf = np.asarray(confidence, np.float64).copy()
    none = np.zeros(T, bool)
    if cfg.strength <= 0 or T == 0:
        f32 = lambda a: a.astype(np.float32)  # noqa: E731
        return CleanedHand(present.copy(), none, none.copy(), f32(conf), f32(q), f32(r), f32(k2), f32(q), f32(r))

    spikes = filters.despike(r, present, cfg.spike_m)
    observed = present & ~spikes
    max_gap = int(round(cfg.max_gap_s * cfg.strength * fps))
    filled_present, gaps = filters.fill_gaps(observed, max(max_gap, 0))
    filled = filled_present & ~observed
    for gap in gaps:
        filters.interpolate_gap_slerp(q, gap)
        filters.interpolate_gap_linear(r, gap)
        filters.interpolate_gap_linear(k2, gap)
        s, e, b, a = gap
        conf[s:e] = FILLED_CONFIDENCE * min(conf[b], conf[a])
    # Spikes that were not bridged (e.g. at a segment edge) are dropped.
    new_present = filled_present
    raw_q, raw_r = q.copy(), r.copy()

    sigma = cfg.sigma_s * cfg.strength * fps
    qs = filters.smooth_quats(q, new_present, sigma, conf)
    rs = filters.gaussian_smooth(r, new_present, sigma, conf)
    absent = ~new_present
    qs[absent] = q[absent]
    conf[absent] = 0.0
    return CleanedHand(
        present=new_present,
        filled=filled,
        spikes=spikes,
        confidence=np.clip(conf, 0, 1).astype(np.float32),
        quats=qs.astype(np.float32),
        root=rs.astype(np.float32),
        keypoints2d=k2.astype(np.float32),
        raw_quats=raw_q.astype(np.float32),
        raw_root=raw_r.astype(np.float32),
    )
