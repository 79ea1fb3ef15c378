"""Temporal filters for hand motion, numpy only (runs in the backend and inside Blender).

Time is axis 0 of every array; ``present`` (T,) bool says which samples are
real.  Filters never smooth across an absent stretch (a hand that left and
came back is two separate segments) and never invent samples except in
:func:`fill_gaps`, which only bridges gaps of at most ``max_gap`` frames.

Rotations are filtered as quaternions (w-x-y-z): made sign-continuous within
each segment, averaged component-wise with Gaussian weights, renormalised.
For the small angular spread inside a Gaussian window this is the (chordal)
rotation mean, so it has none of the axis-flip problems of Euler filtering.
"""
from __future__ import annotations

import numpy as np

from .rotations import quat_normalize, quat_sign_continuity, quat_slerp


def segments(present: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in ``present`` as ``[(start, end_exclusive), ...]``."""
    p = np.asarray(present, bool).astype(np.int8)
    d = np.diff(np.concatenate([[0], p, [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _gaussian_kernel(sigma: float) -> np.ndarray:
    r = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_smooth(x: np.ndarray, present: np.ndarray, sigma: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Gaussian filter along time within each present segment.

    x: (T, ...) float.  sigma: frames (<= 0 returns a copy).  weights: (T,)
    per-sample confidence (normalised convolution, so a low-confidence sample
    pulls less and segment edges are not biased).  Absent samples are returned unchanged.
    """
    x = np.asarray(x, np.float64)
    out = x.copy()
    if sigma <= 0:
        return out
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    w_all = np.ones(len(x)) if weights is None else np.maximum(np.asarray(weights, np.float64), 1e-3)
    for s, e in segments(present):
        seg = x[s:e].reshape(e - s, -1)
        w = w_all[s:e]
        pad = np.pad(seg * w[:, None], ((r, r), (0, 0)))
        wp = np.pad(w, (r, r))
        num = np.stack([np.convolve(pad[:, i], k, mode="valid") for i in range(seg.shape[1])], 1)
        den = np.convolve(wp, k, mode="valid")
        out[s:e] = (num / den[:, None]).reshape(x[s:e].shape)
    return out


def smooth_quats(q: np.ndarray, present: np.ndarray, sigma: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Gaussian-smooth unit quaternions (T, ..., 4) in time; returns unit quaternions."""
    qc = quat_sign_continuity(q, 0, present)
    return quat_normalize(gaussian_smooth(qc, present, sigma, weights))


def _window_medians(x: np.ndarray, seg_lo: np.ndarray, seg_hi: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per sample ``t``, the median of ``x[t + k]`` over ``k`` in ``offsets`` that stay
    inside ``[seg_lo[t], seg_hi[t])``.  x (T, C, D) -> (T, C, D); NaN where none do.
    Equal to ``np.median`` of that slice (the mean of the one or two middle values)."""
    T = len(x)
    idx = np.arange(T)[:, None] + offsets[None, :]  # (T, W)
    ok = (idx >= seg_lo[:, None]) & (idx < seg_hi[:, None])
    win = x[np.clip(idx, 0, T - 1)]  # (T, W, C, D)
    win = np.where(ok[:, :, None, None], win, np.nan)
    win = np.sort(win, axis=1)  # NaN sorts last
    n = ok.sum(axis=1)
    rows = np.arange(T)
    lo, hi = win[rows, np.maximum(n - 1, 0) // 2], win[rows, n // 2]
    return np.where((n > 0)[:, None, None], 0.5 * (lo + hi), np.nan)


def despike(x: np.ndarray, present: np.ndarray, threshold, window: int = 2) -> np.ndarray:
    """Flag samples that jump away from both neighbourhoods and come back: the one
    spike detector (the pipeline's root despiking, the add-on's and the command
    line's Remove Spikes).

    x: (T, D) one feature vector per sample (e.g. a position), or (T, C, D) with
    ``C`` independent channels (e.g. one quaternion per joint).  threshold: the
    distance in x's unit, a scalar or one per channel (C,).
    A sample is a spike when its distance to the mean of the medians of the
    ``window`` samples on each side (inside its present segment) exceeds
    ``threshold`` *and* the two sides agree with each other within ``threshold``
    (so a real fast move is not a spike).  Segment ends are never spikes.
    Returns (T,) bool for (T, D) input, (T, C) bool for (T, C, D) input.
    """
    x = np.asarray(x, np.float64)
    single = x.ndim <= 2
    xc = x.reshape(len(x), 1, -1) if single else x
    T, C = xc.shape[:2]
    thr = np.broadcast_to(np.asarray(threshold, np.float64), (C,))
    present = np.asarray(present, bool)
    spikes = np.zeros((T, C), bool)
    segs = segments(present)
    if T < 3 or not segs:
        return spikes[:, 0] if single else spikes
    seg_lo, seg_hi = np.zeros(T, np.int64), np.zeros(T, np.int64)
    for s, e in segs:
        seg_lo[s:e], seg_hi[s:e] = s, e
    k = np.arange(1, window + 1)
    ml = _window_medians(xc, seg_lo, seg_hi, -k)
    mh = _window_medians(xc, seg_lo, seg_hi, k)
    t = np.arange(T)
    inner = present & (t > seg_lo) & (t < seg_hi - 1)
    with np.errstate(invalid="ignore"):
        away = np.linalg.norm(xc - 0.5 * (ml + mh), axis=-1) > thr
        agree = np.linalg.norm(ml - mh, axis=-1) < thr
    spikes = inner[:, None] & away & agree
    return spikes[:, 0] if single else spikes


def fill_gaps(present: np.ndarray, max_gap: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Which absent stretches to bridge.

    Returns ``(filled_present (T,), gaps)`` with each gap ``(start, end_exclusive,
    before, after)``: frames ``start..end-1`` are absent, ``before`` and ``after``
    the present frames around them.  Only gaps of at most ``max_gap`` frames
    with a present frame on both sides are bridged; longer ones stay absent.
    """
    present = np.asarray(present, bool)
    filled = present.copy()
    gaps = []
    segs = segments(present)
    for (s0, e0), (s1, _) in zip(segs[:-1], segs[1:]):
        n = s1 - e0
        if 0 < n <= max_gap:
            filled[e0:s1] = True
            gaps.append((e0, s1, e0 - 1, s1))
    return filled, gaps


def interpolate_gap_linear(x: np.ndarray, gap: tuple[int, int, int, int]) -> None:
    """In place: linear interpolation of (T, ...) ``x`` over one gap of :func:`fill_gaps`."""
    s, e, b, a = gap
    f = (np.arange(s, e) - b) / (a - b)
    f = f.reshape((-1,) + (1,) * (x.ndim - 1))
    x[s:e] = (1 - f) * x[b] + f * x[a]


def interpolate_gap_slerp(q: np.ndarray, gap: tuple[int, int, int, int]) -> None:
    """In place: slerp of (T, ..., 4) quaternions over one gap of :func:`fill_gaps`."""
    s, e, b, a = gap
    for t in range(s, e):
        q[t] = quat_slerp(q[b], q[a], (t - b) / (a - b))
