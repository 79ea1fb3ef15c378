"""Key reduction within a tolerance, numpy only (Ramer-Douglas-Peucker in time).

Given densely keyed samples, keep the fewest keys (greedily, by recursive
splitting at the worst sample) such that **linear interpolation between the
kept keys** reproduces every original sample within a tolerance.  Linear is
what the scene writer keys with, and what Blender evaluates between LINEAR
keys, so the error bound holds for the reduced F-Curves in Blender exactly.

Two error measures:

* rotations: quaternions (w, x, y, z) are interpolated component-wise (one
  F-Curve per component, as in Blender) and renormalised (as Blender does
  before building the bone matrix); the error is the geodesic angle to the
  original rotation, radians.
* vectors: Euclidean distance, in the values' unit (metres for locations).

Frames are any strictly increasing numbers (scene frames).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .filters import segments
from .rotations import quat_sign_continuity

ErrorFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _quat_error(approx: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(M, ..., 4) lerped (un-normalised) vs true unit quaternions -> (M,) worst angle (rad)."""
    n = np.linalg.norm(approx, axis=-1, keepdims=True)
    a = approx / np.maximum(n, 1e-12)
    t = truth / np.maximum(np.linalg.norm(truth, axis=-1, keepdims=True), 1e-12)
    dot = np.abs(np.sum(a * t, axis=-1))
    ang = 2.0 * np.arccos(np.clip(dot, -1.0, 1.0))
    return ang.reshape(len(ang), -1).max(axis=1)


def _vector_error(approx: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(M, ..., D) -> (M,) worst Euclidean distance over the middle axes."""
    d = np.linalg.norm(approx - truth, axis=-1)
    return d.reshape(len(d), -1).max(axis=1)


def reduce_keys(frames: np.ndarray, values: np.ndarray, tolerance: float, error: ErrorFn) -> np.ndarray:
    """Indices of the keys to keep (sorted, always including the first and last).

    frames:    (N,) strictly increasing.
    values:    (N, ...) samples; interpolation is component-wise linear in frames.
    tolerance: largest allowed ``error(interpolated, original)`` at any sample.
    error:     maps ``(M, ...)`` interpolated and original samples to ``(M,)`` errors.
    """
    frames = np.asarray(frames, np.float64)
    values = np.asarray(values, np.float64)
    n = len(frames)
    if n != len(values):
        raise ValueError(f"frames ({n}) and values ({len(values)}) differ in length")
    if n <= 2:
        return np.arange(n)
    if np.any(np.diff(frames) <= 0):
        raise ValueError("frames must be strictly increasing")
    keep = np.zeros(n, bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        f = (frames[i + 1:j] - frames[i]) / (frames[j] - frames[i])
        f = f.reshape((-1,) + (1,) * (values.ndim - 1))
        approx = (1.0 - f) * values[i] + f * values[j]
        err = error(approx, values[i + 1:j])
        k = int(np.argmax(err))
        if err[k] > tolerance:
            m = i + 1 + k
            keep[m] = True
            stack.append((i, m))
            stack.append((m, j))
    return np.flatnonzero(keep)


def reduce_quaternion_keys(frames: np.ndarray, quats: np.ndarray, tolerance_rad: float) -> np.ndarray:
    """Keys to keep for unit quaternions ``(N, ..., 4)`` (one bone, or several bones
    sharing key frames) within ``tolerance_rad`` geodesic angle.  The quaternions
    should be sign-continuous in time (as keyed), else the lerp goes the long way."""
    return reduce_keys(frames, quats, float(tolerance_rad), _quat_error)


def reduce_vector_keys(frames: np.ndarray, values: np.ndarray, tolerance: float) -> np.ndarray:
    """Keys to keep for vectors ``(N, ..., D)`` within ``tolerance`` Euclidean distance."""
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    return reduce_keys(frames, values, float(tolerance), _vector_error)


def interpolate_keys(frames: np.ndarray, key_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values[key_idx]`` at every frame ``(N, ...)``:
    what the reduced keys evaluate to (for checks and reports)."""
    frames = np.asarray(frames, np.float64)
    values = np.asarray(values, np.float64)
    kf = frames[key_idx]
    flat = values.reshape(len(values), -1)[key_idx]
    out = np.stack([np.interp(frames, kf, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    return out.reshape(values.shape)


# --------------------------------------------------------------------------- one hand


def reduce_hand_keys(frames: np.ndarray, present: np.ndarray, quats: np.ndarray, loc: np.ndarray,
                     angle_tol_rad: float, distance_tol_m: float, sel: np.ndarray | None = None,
                     keyed: np.ndarray | None = None) -> np.ndarray:
    """Which samples of one hand keep a key, per channel: THE key reduction of the
    add-on's Reduce Keys and of ``lagc-hand cleanup --reduce``.

    frames:  (N,) strictly increasing sample frames (a uniform grid, absent samples included).
    present: (N,) bool; absent samples never get a key and split the motion: each
             present stretch is reduced on its own, so nothing is interpolated
             across a gap and the samples around a gap stay keys.
    quats:   (N, J, 4) unit quaternions w-x-y-z, one channel per joint (any fixed frame
             per joint: the angle test is invariant under a constant rotation).
    loc:     (N, 3) wrist location, metres.
    angle_tol_rad / distance_tol_m: the largest error allowed at any sample, per joint
             (geodesic angle) and for the wrist (Euclidean distance).
    sel:     (N,) bool, the samples the reduction may change (default all); it also
             splits the runs, and keys inside it never depend on what lies outside.
    keyed:   (N, J+1) bool, the keys there are now (default: every present sample);
             outside ``sel`` they stay as they are, plus a key on each sample next to
             a reduced run so the curve outside the range is unchanged.
    Returns keep (N, J+1) bool: columns 0..J-1 the joints' rotations, column J the
    wrist location.  Each channel is reduced independently (Blender, FBX and glTF key
    each F-Curve / channel on its own, so a still thumb needs no keys where the index
    finger moves).
    """
    frames = np.asarray(frames, np.float64)
    present = np.asarray(present, bool)
    q = np.asarray(quats, np.float64)
    x = np.asarray(loc, np.float64)
    n, J = q.shape[:2]
    sel = np.ones(n, bool) if sel is None else np.asarray(sel, bool)
    keep = np.zeros((n, J + 1), bool)
    keep[present] = True if keyed is None else np.asarray(keyed, bool)[present]
    for s, e in segments(present):  # segment ends always carry a key
        keep[[s, e - 1]] = True
    qc = quat_sign_continuity(q, 0, present)
    for s, e in segments(present & sel):
        keep[s:e] = False
        for j in range(J):
            keep[s + reduce_quaternion_keys(frames[s:e], qc[s:e, j], angle_tol_rad), j] = True
        keep[s + reduce_vector_keys(frames[s:e], x[s:e], distance_tol_m), J] = True
        for o in (s - 1, e):  # the neighbours outside the range keep the outside curve
            if 0 <= o < n and present[o] and not sel[o]:
                keep[o] = True
    return keep


def evaluate_hand_keys(frames: np.ndarray, present: np.ndarray, quats: np.ndarray, loc: np.ndarray,
                       keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What keys ``keep`` (N, J+1) of :func:`reduce_hand_keys` evaluate to at every
    present sample: per channel, component-wise linear interpolation between its
    keys (Blender's LINEAR F-Curves), quaternions renormalised.  Returns new
    ``(quats (N, J, 4), loc (N, 3))``; absent samples unchanged."""
    frames = np.asarray(frames, np.float64)
    present = np.asarray(present, bool)
    q = quat_sign_continuity(quats, 0, present)
    x = np.array(loc, np.float64, copy=True)
    J = q.shape[1]
    q_out = q.copy()
    p = np.flatnonzero(present)
    for j in range(J):
        q_out[p, j] = interpolate_keys(frames[p], np.flatnonzero(keep[p, j]), q[p, j])
    x[p] = interpolate_keys(frames[p], np.flatnonzero(keep[p, J]), x[p])
    q_out[p] /= np.linalg.norm(q_out[p], axis=-1, keepdims=True)
    return q_out, x


def fcurve_key_count(keep: np.ndarray) -> int:
    """Keys on the F-Curves of ``keep`` (N, J+1): 4 per rotation key (w, x, y, z),
    3 per wrist location key (x, y, z), as Blender's Graph Editor counts them."""
    keep = np.asarray(keep, bool)
    return int(4 * keep[:, :-1].sum() + 3 * keep[:, -1].sum())
