"""Rotation helpers in numpy.  Quaternions are ``(..., 4)`` in **w, x, y, z**
order (Blender's order), unit length; rotation vectors (axis-angle) are
``(..., 3)`` in radians; matrices are ``(..., 3, 3)`` acting on column vectors.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternions; a zero quaternion becomes the identity."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    out = np.where(n > _EPS, q / np.maximum(n, _EPS), 0.0)
    ident = np.zeros_like(out)
    ident[..., 0] = 1.0
    return np.where(n > _EPS, out, ident)


def quat_identity(shape: tuple[int, ...] = ()) -> np.ndarray:
    q = np.zeros(tuple(shape) + (4,), dtype=np.float64)
    q[..., 0] = 1.0
    return q


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v (..., 3)`` by quaternions ``q (..., 4)``."""
    return np.einsum("...ij,...j->...i", quat_to_matrix(q), np.asarray(v, dtype=np.float64))


def axis_angle_to_quat(rotvec: np.ndarray) -> np.ndarray:
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(x/2)/x -> 1/2 as x -> 0; the series keeps small angles exact.
    small = angle < 1e-6
    k = np.where(small, 0.5 - angle**2 / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    return np.concatenate([np.cos(half), rotvec * k], axis=-1)


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    q = quat_normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)  # shortest rotation
    xyz = q[..., 1:]
    s = np.linalg.norm(xyz, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    small = s < 1e-8
    k = np.where(small, 2.0 / np.maximum(q[..., :1], _EPS), angle / np.where(small, 1.0, s))
    return xyz * k


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    q = quat_normalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices -> unit quaternions with ``w >= 0`` (Shepperd's method)."""
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    cand = np.stack(
        [
            tr,
            m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
            m[:, 1, 1] - m[:, 0, 0] - m[:, 2, 2],
            m[:, 2, 2] - m[:, 0, 0] - m[:, 1, 1],
        ],
        axis=1,
    )
    best = np.argmax(cand, axis=1)
    q = np.empty((m.shape[0], 4))
    for i in range(4):
        sel = best == i
        if not np.any(sel):
            continue
        mm = m[sel]
        s = 2.0 * np.sqrt(np.maximum(1.0 + cand[sel, i], _EPS))
        if i == 0:
            q[sel] = np.stack([0.25 * s, (mm[:, 2, 1] - mm[:, 1, 2]) / s, (mm[:, 0, 2] - mm[:, 2, 0]) / s, (mm[:, 1, 0] - mm[:, 0, 1]) / s], 1)
        elif i == 1:
            q[sel] = np.stack([(mm[:, 2, 1] - mm[:, 1, 2]) / s, 0.25 * s, (mm[:, 0, 1] + mm[:, 1, 0]) / s, (mm[:, 0, 2] + mm[:, 2, 0]) / s], 1)
        elif i == 2:
            q[sel] = np.stack([(mm[:, 0, 2] - mm[:, 2, 0]) / s, (mm[:, 0, 1] + mm[:, 1, 0]) / s, 0.25 * s, (mm[:, 1, 2] + mm[:, 2, 1]) / s], 1)
        else:
            q[sel] = np.stack([(mm[:, 1, 0] - mm[:, 0, 1]) / s, (mm[:, 0, 2] + mm[:, 2, 0]) / s, (mm[:, 1, 2] + mm[:, 2, 1]) / s, 0.25 * s], 1)
    q = quat_normalize(q)
    q = np.where(q[:, :1] < 0, -q, q)
    return q.reshape(shape + (4,))


def quat_sign_continuity(q: np.ndarray, axis: int = 0, present: np.ndarray | None = None) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions have a
    non-negative dot product; ``q`` and ``-q`` are the same rotation but keys or
    averages on opposite hemispheres take the long way round.

    q:       (..., T, ..., 4) quaternions, time on ``axis``; any trailing joint axes.
    present: optional (T,) bool: each run of present samples is made continuous on
             its own (it keeps its first sample's sign) and absent samples are
             returned unchanged, so a hand that left and came back is not tied
             to what its absent samples hold.

    The one implementation of sign continuity (the fit, the two-hand fit, the
    filters, key reduction, the scene writer and the add-on's edits all call it).
    Vectorised: sample ``t`` is flipped iff an odd number of the consecutive dot
    products from its run's start to ``t`` are negative (a dot product of exactly
    0, two rotations 180 degrees apart, counts as non-negative).
    """
    q = np.moveaxis(np.array(q, dtype=np.float64, copy=True), axis, 0)
    T = q.shape[0]
    if T < 2:
        return np.moveaxis(q, 0, axis)
    neg = np.sum(q[1:] * q[:-1], axis=-1) < 0  # (T-1, ...)
    count = np.concatenate([np.zeros_like(neg[:1], dtype=np.int64), np.cumsum(neg, axis=0)], axis=0)
    if present is not None:
        p = np.asarray(present, bool)
        if p.shape != (T,):
            raise ValueError(f"present has shape {p.shape}, expected ({T},)")
        # Restart the count at each run start (and at every absent sample).
        start = np.concatenate([[True], ~(p[1:] & p[:-1])])
        run_start = np.maximum.accumulate(np.where(start, np.arange(T), 0))
        count = count - count[run_start]
    q = np.where((count % 2 == 1)[..., None], -q, q)
    return np.moveaxis(q, 0, axis)


def quat_slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation between ``a`` and ``b`` at fraction ``t`` (broadcast)."""
    a = quat_normalize(a)
    b = quat_normalize(b)
    t = np.asarray(t, dtype=np.float64)
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    if t.ndim and t.shape[-1] != 1:
        t = t[..., None]
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(theta)
    lin = sin < 1e-6
    wa = np.where(lin, 1.0 - t, np.sin((1.0 - t) * theta) / np.where(lin, 1.0, sin))
    wb = np.where(lin, t, np.sin(t * theta) / np.where(lin, 1.0, sin))
    return quat_normalize(wa * a + wb * b)


def quat_angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle in radians between rotations ``a`` and ``b``."""
    dot = np.abs(np.sum(quat_normalize(a) * quat_normalize(b), axis=-1))
    return 2.0 * np.arccos(np.clip(dot, -1.0, 1.0))


def kabsch_rotation(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation ``R`` (T, 3, 3) minimising ``sum |R (src_i - c_src) - (dst_i - c_dst)|^2``
    (Kabsch; a proper rotation, reflections excluded).

    src: (N, 3) points; dst: (T, N, 3), one point set per batch entry; each about its own centroid.
    """
    s = np.asarray(src, np.float64)
    d = np.asarray(dst, np.float64)
    s = s - s.mean(0)
    d = d - d.mean(1, keepdims=True)
    H = np.einsum("ni,tnj->tij", s, d)
    U, _, Vt = np.linalg.svd(H)
    det = np.sign(np.linalg.det(np.einsum("tji,tkj->tik", Vt, U)))
    D = np.tile(np.eye(3), (len(d), 1, 1))
    D[:, 2, 2] = np.where(det == 0, 1.0, det)  # a degenerate (flat) set: keep it a rotation
    return np.einsum("tji,tjk,tlk->til", Vt, D, U)
