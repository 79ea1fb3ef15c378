"""Mocap cleanup edits on one hand's sampled motion, numpy only.

The Blender operators (``blender/cleanup_ops.py``) and ``lagc-hand cleanup``
both call these functions (and ``keyreduce.reduce_hand_keys`` for key
reduction), so the add-on cleans exactly like the command line.

Data model (one hand, ``N`` samples on a uniform frame grid):

* ``quats``   (N, J, 4) unit quaternions w-x-y-z, any fixed frame per joint
  (MANO semantics in a HandMotion, bone-local in Blender: the two differ by a
  constant conjugation per bone, which is linear in the components, so every
  filter here gives the same rotations in either frame);
* ``loc``     (N, 3) wrist position (metres) in a fixed frame;
* ``present`` (N,) bool: the hand is there (absent samples hold anything and
  are never used as evidence);
* ``sel``     (N,) bool: the samples an edit may change (the frame range the
  user picked).  Filters see the whole track (so a range edge is filtered with
  its real neighbours) but only write where ``sel`` is true.

Units: angles in degrees at the API surface (what users type), radians inside;
distances in metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import filters
from .rotations import (quat_angle_between, quat_conjugate, quat_multiply, quat_normalize, quat_sign_continuity,
                        quat_slerp, quat_to_axis_angle)
from .skeleton import MANO21_TO_PUBLIC, PUBLIC_PARENTS


class MocapEditError(ValueError):
    """An edit cannot run on this data (message is for the user)."""


# --------------------------------------------------------------------------- metrics


def rotation_jitter_deg(quats: np.ndarray, present: np.ndarray) -> float:
    """Mean angular acceleration, degrees / frame^2, over joints and samples.

    quats (N, J, 4).  ``w_t = log(q_t^-1 q_{t+1})`` is the per-frame angular
    step; jitter is the mean ``|w_{t+1} - w_t|`` over triples of consecutive
    present samples.  Smooth motion scores near 0; frame-to-frame noise of
    ``s`` degrees scores roughly ``2.3 s``.
    """
    q = np.asarray(quats, np.float64)
    p = np.asarray(present, bool)
    if len(q) < 3:
        return 0.0
    step = quat_to_axis_angle(quat_multiply(quat_conjugate(q[:-1]), q[1:]))  # (N-1, J, 3)
    acc = np.linalg.norm(step[1:] - step[:-1], axis=-1)  # (N-2, J)
    ok = p[:-2] & p[1:-1] & p[2:]
    if not ok.any():
        return 0.0
    return float(np.degrees(acc[ok].mean()))


def position_jitter_mm(points: np.ndarray, present: np.ndarray) -> float:
    """Mean second difference ``|x_{t+1} - 2 x_t + x_{t-1}|`` in mm over points and
    samples.  points (N, ..., 3) metres; present (N,)."""
    x = np.asarray(points, np.float64)
    p = np.asarray(present, bool)
    if len(x) < 3:
        return 0.0
    acc = np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1)
    ok = p[:-2] & p[1:-1] & p[2:]
    if not ok.any():
        return 0.0
    return float(1000.0 * acc[ok].mean())


def angle_error_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-element geodesic angle (degrees) between quaternion arrays ``(..., 4)``."""
    return np.degrees(quat_angle_between(a, b))


# --------------------------------------------------------------------------- edits


def _sel(sel: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n, bool) if sel is None else np.asarray(sel, bool)


def smooth(quats: np.ndarray, loc: np.ndarray, present: np.ndarray, strength: float,
           sel: np.ndarray | None = None, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian smoothing in rotation space (sign-continuous quaternions averaged
    and renormalised, :func:`filters.smooth_quats`) and of the wrist location.

    strength: the Gaussian's sigma in frames (samples); 0 leaves everything as is.
    Returns new ``(quats, loc)``; only ``sel & present`` samples change.
    """
    if not np.isfinite(strength) or strength < 0:
        raise MocapEditError(f"smoothing strength must be 0 or more, got {strength}")
    q = np.asarray(quats, np.float64)
    x = np.asarray(loc, np.float64)
    present = np.asarray(present, bool)
    write = _sel(sel, len(q)) & present
    qs = filters.smooth_quats(q, present, strength, weights)
    xs = filters.gaussian_smooth(x, present, strength, weights)
    q_out, x_out = q.copy(), x.copy()
    q_out[write] = qs[write]
    x_out[write] = xs[write]
    return q_out, x_out


def _chord(angle_rad: float) -> float:
    """Distance between unit quaternions (same hemisphere) ``|q1 - q2| = 2 sin(angle/4)``."""
    return 2.0 * np.sin(angle_rad / 4.0)


def find_spikes(quats: np.ndarray, loc: np.ndarray, present: np.ndarray, angle_deg: float = 20.0,
                distance_m: float = 0.03) -> np.ndarray:
    """(N, J+1) bool: per joint (and the wrist location, last column), samples that
    jump away by more than the threshold and come back within 1-2 samples
    (:func:`filters.despike` with a 3-sample window on each side)."""
    q = quat_sign_continuity(quats, 0, present)
    rot = filters.despike(q, present, _chord(np.radians(angle_deg)), window=3)
    wrist = filters.despike(np.asarray(loc, np.float64), present, distance_m, window=3)
    return np.concatenate([rot, wrist[:, None]], axis=1)


def _bridge(n: int, bad: np.ndarray, ok: np.ndarray):
    """For each bad sample, the nearest ok samples before and after (or -1)."""
    idx = np.arange(n)
    okidx = np.flatnonzero(ok)
    if okidx.size == 0:
        return np.full(n, -1), np.full(n, -1)
    pos = np.searchsorted(okidx, idx)
    before = np.where(pos > 0, okidx[np.maximum(pos - 1, 0)], -1)
    after = np.where(pos < okidx.size, okidx[np.minimum(pos, okidx.size - 1)], -1)
    return before, after


def remove_spikes(quats: np.ndarray, loc: np.ndarray, present: np.ndarray, sel: np.ndarray | None = None,
                  angle_deg: float = 20.0, distance_m: float = 0.03) -> tuple[np.ndarray, np.ndarray, int]:
    """Replace spiking samples (see :func:`find_spikes`) by slerp / lerp between the
    nearest good samples of the same joint.  Returns ``(quats, loc, n_fixed)``."""
    q = np.array(quats, np.float64, copy=True)
    x = np.array(loc, np.float64, copy=True)
    present = np.asarray(present, bool)
    spikes = find_spikes(q, x, present, angle_deg, distance_m) & _sel(sel, len(q))[:, None]
    n, J = q.shape[:2]
    fixed = 0
    for j in range(J + 1):
        bad = spikes[:, j]
        if not bad.any():
            continue
        before, after = _bridge(n, bad, present & ~bad)
        for t in np.flatnonzero(bad):
            b, a = before[t], after[t]
            if b < 0 or a < 0:
                continue  # at a track end: nothing to interpolate from
            f = (t - b) / (a - b)
            if j < J:
                q[t, j] = quat_slerp(q[b, j], q[a, j], f)
            else:
                x[t] = (1 - f) * x[b] + f * x[a]
            fixed += 1
    return q, x, fixed


def _hermite(p0, p1, m0, m1, s):
    s = np.asarray(s, np.float64).reshape((-1,) + (1,) * (np.ndim(p0)))
    h00 = 2 * s**3 - 3 * s**2 + 1
    h10 = s**3 - 2 * s**2 + s
    h01 = -2 * s**3 + 3 * s**2
    h11 = s**3 - s**2
    return h00 * p0 + h10 * m0 + h01 * p1 + h11 * m1


def fill_gaps(quats: np.ndarray, loc: np.ndarray, present: np.ndarray, max_gap: int,
              sel: np.ndarray | None = None, method: str = "SLERP") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bridge absent stretches of at most ``max_gap`` samples inside ``sel``.

    method: ``"SLERP"`` (slerp / lerp between the two samples around the gap) or
    ``"SPLINE"`` (cubic Hermite with Catmull-Rom tangents from the samples one
    step further out, on sign-continuous quaternions, renormalised; falls back
    to slerp where a side has a single sample).
    Returns ``(quats, loc, present)`` with the bridged samples present.
    """
    method = method.upper()
    if method not in ("SLERP", "SPLINE"):
        raise MocapEditError(f"gap fill method must be SLERP or SPLINE, not {method!r}")
    if max_gap < 1:
        raise MocapEditError(f"the longest gap to fill must be 1 frame or more, got {max_gap}")
    q = np.array(quats, np.float64, copy=True)
    x = np.array(loc, np.float64, copy=True)
    present = np.asarray(present, bool)
    sel = _sel(sel, len(q))
    new_present = present.copy()
    _, gaps = filters.fill_gaps(present, max_gap)
    for s, e, b, a in gaps:
        if not sel[s:e].all():
            continue
        new_present[s:e] = True
        t = np.arange(s, e)
        f = (t - b) / (a - b)
        b2, a2 = b - 1, a + 1
        spline = method == "SPLINE" and b2 >= 0 and a2 < len(q) and present[b2] and present[a2]
        if not spline:
            filters.interpolate_gap_slerp(q, (s, e, b, a))
            filters.interpolate_gap_linear(x, (s, e, b, a))
            continue
        # Catmull-Rom tangents (finite differences over the neighbours) in units of the
        # gap parameter f in [0, 1], which spans a - b samples.
        span = float(a - b)
        qq = quat_sign_continuity(q[[b2, b, a, a2]])
        m0 = (qq[2] - qq[0]) * span / (a - b2)
        m1 = (qq[3] - qq[1]) * span / (a2 - b)
        q[s:e] = quat_normalize(_hermite(qq[1], qq[2], m0, m1, f))
        xx = x[[b2, b, a, a2]]
        xm0 = (xx[2] - xx[0]) * span / (a - b2)
        xm1 = (xx[3] - xx[1]) * span / (a2 - b)
        x[s:e] = _hermite(xx[1], xx[2], xm0, xm1, f)
    return q, x, new_present


def swap_hands(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...], sel: np.ndarray) -> tuple[tuple, tuple]:
    """Exchange two hands' arrays (e.g. ``(quats, loc, present)``, each (N, ...)) where
    ``sel`` (N,) is true; returns new tuples.  The add-on's Swap and ``lagc-hand
    cleanup --swap`` both call it.

    Both must be in the same semantics (HandMotion: MANO joint rotations and
    camera-frame roots; Blender converts bone-local keys to that first): the
    left model is the mirror of the right, and a HandMotion stores each hand's
    rotations in its own model frame, so an identity switch is undone by
    exchanging the stored values, and swap(swap(x)) == x exactly.
    """
    sel = np.asarray(sel, bool)
    if len(a) != len(b):
        raise MocapEditError(f"the two hands hold {len(a)} and {len(b)} arrays")
    out_a = [np.array(v, copy=True) for v in a]
    out_b = [np.array(v, copy=True) for v in b]
    for k in range(len(a)):
        out_a[k][sel] = b[k][sel]
        out_b[k][sel] = a[k][sel]
    return tuple(out_a), tuple(out_b)


# --------------------------------------------------------------------------- shape


@dataclass
class ScaleFit:
    """scale: observed / rest hand size (uniform, about the wrist).
    spread: relative spread (IQR / median) of the per-frame estimates.
    frames_used: how many present frames went into the estimate."""

    scale: float
    spread: float
    frames_used: int


def public_bone_lengths(points: np.ndarray) -> np.ndarray:
    """(..., 21, 3) public-order keypoints -> (..., 20) bone lengths (metres)."""
    p = np.asarray(points, np.float64)
    child = np.arange(1, 21)
    return np.linalg.norm(p[..., child, :] - p[..., PUBLIC_PARENTS[child], :], axis=-1)


def fit_hand_scale(keypoints3d: np.ndarray, present: np.ndarray, rest_joints: np.ndarray,
                   rest_tips: np.ndarray) -> ScaleFit:
    """Uniform hand scale that makes the rest skeleton's bone lengths match the
    observed keypoints' bone lengths (median over present frames of the ratio of
    summed bone lengths; robust to a few bad frames).

    keypoints3d (T, 21, 3) public order, metres; rest_joints (16, 3) MANO order;
    rest_tips (5, 3) thumb..pinky tips, same frame as rest_joints.
    """
    present = np.asarray(present, bool)
    kp = np.asarray(keypoints3d, np.float64)[present]
    if len(kp) == 0:
        raise MocapEditError("the hand is never present: there are no keypoints to fit its size to")
    rest21 = np.concatenate([np.asarray(rest_joints, np.float64), np.asarray(rest_tips, np.float64)])[MANO21_TO_PUBLIC]
    rest_len = public_bone_lengths(rest21).sum()
    if rest_len <= 1e-6:
        raise MocapEditError("the armature's rest skeleton has no length")
    ratios = public_bone_lengths(kp).sum(axis=-1) / rest_len
    ratios = ratios[np.isfinite(ratios) & (ratios > 1e-3)]
    if len(ratios) == 0:
        raise MocapEditError("the stored keypoints are all degenerate (zero-length bones)")
    med = float(np.median(ratios))
    q75, q25 = np.percentile(ratios, [75, 25])
    return ScaleFit(scale=med, spread=float((q75 - q25) / med), frames_used=int(len(ratios)))


# --------------------------------------------------------------------------- forward kinematics


def forward_keypoints(quats: np.ndarray, root: np.ndarray, rest_joints: np.ndarray,
                      rest_tips: np.ndarray) -> np.ndarray:
    """Rigid MANO forward kinematics -> (T, 21, 3) keypoints, public order.

    quats (T, 16, 4) MANO semantics (joint 0 global, others parent-relative, in
    the rest-model frame); root (T, 3) wrist in the camera frame, metres;
    rest_joints (16, 3); rest_tips (5, 3) thumb..pinky tip vertices at rest.
    Pose-corrective blend shapes are not applied (zero for the open model; a
    sub-millimetre shift of MANO's fingertip vertices), which is what an edit
    of already-fitted rotations needs to refresh its keypoints.
    """
    from .rotations import quat_to_matrix
    from .skeleton import MANO_PARENTS, TIP_PARENTS

    R = quat_to_matrix(np.asarray(quats, np.float64))
    J = np.asarray(rest_joints, np.float64)
    tips = np.asarray(rest_tips, np.float64)
    T = R.shape[0]
    A = np.zeros((T, 16, 3, 3))
    P = np.zeros((T, 21, 3))
    A[:, 0] = R[:, 0]
    P[:, 0] = np.asarray(root, np.float64)
    for k in range(1, 16):
        p = MANO_PARENTS[k]
        A[:, k] = A[:, p] @ R[:, k]
        P[:, k] = P[:, p] + A[:, p] @ (J[k] - J[p])
    for i in range(5):
        p = TIP_PARENTS[i]
        P[:, 16 + i] = P[:, p] + A[:, p] @ (tips[i] - J[p])
    return P[:, MANO21_TO_PUBLIC]
