"""Clean one hand's fitted motion: despike, bridge short gaps, smooth.

Order: (1) spikes (single-frame jumps of the root that come straight back)
become gaps; (2) gaps up to ``max_gap_s`` seconds are bridged by slerp
(rotations) and linear interpolation (root, 2D keypoints), with reduced
confidence; longer gaps stay absent; (3) Gaussian smoothing of quaternions
and root within each present segment, weighted by confidence; (4) with an
:class:`ImageAlign`, the smoothed hand is put back on the image: smoothing
rotations and root separately moves the fingertips off the hand in the
footage (measured: +4 px on real footage, issue 13), so each frame's root is
re-solved (translation-only PnP) so that the smoothed pose projects onto the
equally smoothed detector 2D keypoints, and only the depth keeps its own
smoothing (moving the root along its viewing ray barely moves the image) and
stays within ``MAX_DEPTH_RATIO`` of the fitted depth (where the 2D collapses,
as a hand goes behind the other, the re-solved depth alone ran to metres).
``strength`` scales the smoothing width and the gap length; 0 returns the raw
motion untouched.

Smoothing and gap bridging never run across a **jump**: consecutive observed
frames (or the two ends of a gap) whose detector 2D keypoints lie more than
``jump_sizes`` hand sizes apart (x sqrt of the frames between) are two pieces
of motion, not one.  A hand does not move a whole hand size in one frame
(rendered ground truth: <= 0.1; fast signing: ~0.5), but a track that changes
hands does, and smoothed across it both pieces drifted towards each other over
several frames (issue 13: slpio_asl_different frames 31-33).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from lagc_hand.engines.dedup import hand_size
from lagc_hand.placement.pnp import solve_translation
from lagc_hand_blender.core import filters

#: Confidence given to bridged frames, relative to the lower of their two neighbours.
FILLED_CONFIDENCE = 0.5
#: The cleaned depth stays within this factor of the fitted (smoothed) depth.
MAX_DEPTH_RATIO = 1.25


@dataclass
class CleanConfig:
    """strength: 0 = raw, 1 = default.  sigma_s: Gaussian width (seconds) at
    strength 1.  max_gap_s: longest bridged gap at strength 1.  spike_m:
    root jump (metres) that counts as a spike.  jump_sizes: 2D jump (hand sizes
    per frame) between observed frames where the motion is cut in two pieces."""

    strength: float = 1.0
    sigma_s: float = 0.05
    max_gap_s: float = 0.25
    spike_m: float = 0.04
    jump_sizes: float = 1.0


@dataclass
class ImageAlign:
    """How to keep the cleaned hand on the image.

    K:      (3, 3) intrinsics in pixels (principal point included).
    pose:   (quats (N, 16, 4) w-x-y-z, root (N, 3) metres) -> (N, 21, 3) camera-frame
            keypoints (metres, public order) of the fitted hand model, wrist at ``root``.
    hidden: (T,) bool or None: frames whose 2D keypoints are the tracker's guess for a
            hand hidden behind the other (bridged); the hand is not put onto those
            guesses but keeps its smoothed fitted root there.
    """

    K: np.ndarray
    pose: Callable[[np.ndarray, np.ndarray], np.ndarray]
    hidden: Optional[np.ndarray] = None


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
    align: Optional[ImageAlign] = None,
) -> CleanedHand:
    """present (T,) bool, confidence (T,), quats (T,16,4), root (T,3) metres camera frame,
    keypoints2d (T,21,2) pixels (the detector's), fps > 0.  align: keep the
    cleaned hand on the image (see the module docstring); None: smooth only."""
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
    breaks = jumps(k2, observed, cfg.jump_sizes)
    gaps = [g for g in gaps if not breaks[g[3]]]  # a gap whose ends jump stays a gap
    filled_present = observed.copy()
    for s, e, _, _ in gaps:
        filled_present[s:e] = True
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
    qs = _piecewise(filters.smooth_quats, q, new_present, breaks, sigma, conf)
    rs = _piecewise(filters.gaussian_smooth, r, new_present, breaks, sigma, conf)
    if align is not None and new_present.any():
        rs = _root_on_image(qs, rs, new_present, breaks, k2, conf, sigma, align)
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


def jumps(keypoints2d: np.ndarray, observed: np.ndarray, jump_sizes: float) -> np.ndarray:
    """(T,) bool: True at each observed frame whose 2D keypoints jumped from the
    previous observed frame's by more than ``jump_sizes`` hand sizes x sqrt(frames
    between).  keypoints2d: (T, 21, 2) pixels; observed: (T,) bool."""
    out = np.zeros(len(observed), bool)
    idx = np.flatnonzero(observed)
    for a, b in zip(idx[:-1], idx[1:]):
        size = 0.5 * (hand_size(keypoints2d[a]) + hand_size(keypoints2d[b]))
        d = float(np.linalg.norm(keypoints2d[b] - keypoints2d[a], axis=-1).mean())
        out[b] = d > jump_sizes * size * np.sqrt(b - a)
    return out


def _piecewise(smooth, x: np.ndarray, present: np.ndarray, breaks: np.ndarray, *args) -> np.ndarray:
    """``smooth(x, present, *args)`` run on each piece of ``present`` between
    ``breaks`` (T,) bool (True: a piece starts there), so no filter window reaches
    across a jump.  x: (T, ...); absent samples are returned unchanged."""
    starts = np.flatnonzero(breaks & present)
    if not starts.size:
        return smooth(x, present, *args)
    out = np.asarray(x, np.float64).copy()
    for s, e in zip(np.r_[0, starts], np.r_[starts, len(present)]):
        m = np.zeros_like(present)
        m[s:e] = present[s:e]
        out[m] = smooth(x, m, *args)[m]
    return out


def _root_on_image(qs: np.ndarray, rs: np.ndarray, present: np.ndarray, breaks: np.ndarray, k2: np.ndarray,
                   conf: np.ndarray, sigma: float, align: ImageAlign) -> np.ndarray:
    """Roots (T, 3) metres that put the smoothed pose ``qs`` (T, 16, 4) onto the
    smoothed 2D keypoints ``k2`` (T, 21, 2) px in the present frames; the depth
    is smoothed like ``rs`` (the smoothed fitted roots, (T, 3) metres) and the root
    placed at it on the image; ``breaks`` (T,) bool: where a piece of motion starts
    (see :func:`jumps`)."""
    idx = np.flatnonzero(present)
    X = np.asarray(align.pose(qs[idx], np.zeros((idx.size, 3))), np.float64)  # wrist at the origin
    target = _piecewise(filters.gaussian_smooth, k2, present, breaks, sigma, conf)[idx]
    t, _ = solve_translation(X, target, align.K)
    # The PnP depth follows the smoothed pose's size in the image, but where that pose
    # and the 2D disagree (a detection collapsing as the hand goes behind the other:
    # dynhamr_demo3 f310-312) it runs off (8.6 m for a hand the fit put at 0.8 m); the
    # fit solved depth jointly with the pose at the hand's held size, so it bounds it.
    z = np.zeros(len(present))
    z_fit = rs[idx, 2]
    z[idx] = np.clip(t[:, 2], z_fit / MAX_DEPTH_RATIO, z_fit * MAX_DEPTH_RATIO)
    zs = _piecewise(filters.gaussian_smooth, z, present, breaks, sigma, conf)[idx]
    out = rs.copy()
    out[idx] = _at_depth(X, target, zs, align.K)
    if align.hidden is not None:
        guessed = np.asarray(align.hidden, bool) & present
        out[guessed] = rs[guessed]
    return out


def _at_depth(X: np.ndarray, u: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) translations at depth ``z`` (N,) metres that centre the projection of
    X (N, 21, 3) metres (hand-relative, camera axes) on the pixels u (N, 21, 2):
    each keypoint's viewing ray at its depth, less its offset, averaged (median,
    so one stray keypoint does not pull the hand)."""
    xn = (u - K[[0, 1], [2, 2]]) / K[[0, 1], [0, 1]]  # (N, 21, 2) normalised image coordinates
    xy = np.median(xn * (X[..., 2:3] + z[:, None, None]) - X[..., :2], axis=1)
    return np.concatenate([xy, z[:, None]], 1)
