"""Translation-only PnP: where is a hand of known metric shape that projects here?

Given hand-relative metric keypoints ``X`` (camera-frame axes, arbitrary
origin) and their pixels ``u``, find ``t`` so that ``K (X + t)`` projects onto
``u``.  The rotation is already in ``X`` (MediaPipe's world landmarks are in
camera axes), so only 3 unknowns remain per frame:

1. linear least squares on the cross-multiplied projection equations
   ``(X + t)_x - x_n (X + t)_z = 0`` (and the same for y), ``x_n = K^-1 u``;
2. a few Gauss-Newton steps on the pixel residuals with Huber weights, so one
   badly detected keypoint cannot drag the hand.

All frames are solved at once (numpy batched over ``T``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

#: Points must stay at least this far in front of the camera (metres).
MIN_DEPTH = 0.02


@dataclass
class Placement:
    """One hand placed in the camera frame.

    translation:  (T, 3) float64, metres; camera-frame points = keypoints3d + translation.
    root:         (T, 3) float64, wrist (public keypoint 0) in the camera frame, metres.
    keypoints3d:  (T, 21, 3) float64, placed keypoints, camera frame, metres.
    reproj_error: (T,) float64, RMS reprojection error in pixels (0 where not present).
    """

    translation: np.ndarray
    root: np.ndarray
    keypoints3d: np.ndarray
    reproj_error: np.ndarray


def _project(P: np.ndarray, K: np.ndarray) -> np.ndarray:
    z = np.maximum(P[..., 2:3], 1e-6)
    return P[..., :2] / z * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def solve_translation(
    X: np.ndarray,
    u: np.ndarray,
    K: np.ndarray,
    weights: Optional[np.ndarray] = None,
    iterations: int = 6,
) -> tuple[np.ndarray, np.ndarray]:
    """Batched translation-only PnP.

    X: (T, N, 3) metres, hand-relative, camera axes.  u: (T, N, 2) pixels.
    K: (3, 3).  weights: (T, N) >= 0 or None.
    Returns ``(t (T, 3), rms_px (T,))``.
    """
    X = np.asarray(X, np.float64)
    u = np.asarray(u, np.float64)
    T, N, _ = X.shape
    w = np.ones((T, N)) if weights is None else np.asarray(weights, np.float64)
    f = np.array([K[0, 0], K[1, 1]])
    c = np.array([K[0, 2], K[1, 2]])
    xn = (u - c) / f  # (T, N, 2)

    # Linear step: rows [1, 0, -x_n] t = x_n Z - X, [0, 1, -y_n] t = y_n Z - Y.
    A = np.zeros((T, N, 2, 3))
    A[..., 0, 0] = 1.0
    A[..., 1, 1] = 1.0
    A[..., :, 2] = -xn
    b = xn * X[..., 2:3] - X[..., :2]
    A = A.reshape(T, 2 * N, 3)
    b = b.reshape(T, 2 * N)
    t = _weighted_lstsq(A, np.repeat(w, 2, axis=1), b)

    # Depth fallback for degenerate frames (all weights 0, or behind the camera):
    # size ratio of the 3D and 2D spreads.
    spread3 = np.linalg.norm(X - X.mean(1, keepdims=True), axis=-1).mean(1)
    spread2 = np.linalg.norm(u - u.mean(1, keepdims=True), axis=-1).mean(1)
    z_guess = f.mean() * spread3 / np.maximum(spread2, 1e-6)
    bad = ~np.isfinite(t).all(1) | (t[:, 2] + X[..., 2].min(1) < MIN_DEPTH)
    if np.any(bad):
        zc = z_guess[bad] - X[bad][..., 2].mean(1)
        mean_xn = xn[bad].mean(1)
        t[bad, 2] = zc
        t[bad, :2] = mean_xn * (zc + X[bad][..., 2].mean(1))[:, None] - X[bad][..., :2].mean(1)

    # Gauss-Newton with Huber weights on the pixel residuals.
    for _ in range(iterations):
        P = X + t[:, None, :]
        z = np.maximum(P[..., 2], MIN_DEPTH)
        r = P[..., :2] / z[..., None] * f + c - u  # (T, N, 2)
        rn = np.linalg.norm(r, axis=-1)
        delta = np.maximum(1.5 * np.median(rn, axis=1, keepdims=True), 1.0)
        hub = np.where(rn <= delta, 1.0, delta / np.maximum(rn, 1e-9)) * w
        J = np.zeros((T, N, 2, 3))
        J[..., 0, 0] = f[0] / z
        J[..., 1, 1] = f[1] / z
        J[..., 0, 2] = -f[0] * P[..., 0] / z**2
        J[..., 1, 2] = -f[1] * P[..., 1] / z**2
        J = J.reshape(T, 2 * N, 3)
        rr = r.reshape(T, 2 * N)
        step = _weighted_lstsq(J, np.repeat(hub, 2, axis=1), rr)
        step = np.where(np.isfinite(step), step, 0.0)
        t = t - step
        # Keep every point in front of the camera.
        t[:, 2] = np.maximum(t[:, 2], MIN_DEPTH - X[..., 2].min(1))
    P = X + t[:, None, :]
    r = _project(P, K) - u
    rms = np.sqrt(np.sum(w[..., None] * r**2, axis=(1, 2)) / np.maximum(w.sum(1), 1e-9))
    return t, rms


def place_hand(
    keypoints3d: np.ndarray,
    keypoints2d: np.ndarray,
    present: np.ndarray,
    K: np.ndarray,
) -> Placement:
    """Place one tracked hand in every frame where it is present.

    keypoints3d: (T, 21, 3) metres, hand-relative, camera axes.
    keypoints2d: (T, 21, 2) pixels.  present: (T,) bool.  K: (3, 3).
    Frames where the hand is absent get zeros.
    """
    T = keypoints3d.shape[0]
    trans = np.zeros((T, 3))
    err = np.zeros(T)
    idx = np.flatnonzero(present)
    if idx.size:
        t, rms = solve_translation(keypoints3d[idx], keypoints2d[idx], K)
        trans[idx] = t
        err[idx] = rms
    placed = np.where(present[:, None, None], keypoints3d + trans[:, None, :], 0.0)
    return Placement(translation=trans, root=placed[:, 0].copy(), keypoints3d=placed, reproj_error=err)


def _weighted_lstsq(A: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame weighted least squares: argmin_x sum_k w_k (A_k x - b_k)^2.

    A: (T, K, 3); w: (T, K) >= 0; b: (T, K) -> x: (T, 3).  A tiny ridge keeps
    frames with no weight solvable (their x is then ~0, or non-finite if A is
    degenerate, which callers check).
    """
    # batched matrix products: the 3-operand einsums were ~5x slower for thousands of frames
    Aw = A * w[..., None]
    AtA = np.matmul(Aw.transpose(0, 2, 1), A) + 1e-9 * np.eye(3)
    Atb = np.matmul(Aw.transpose(0, 2, 1), b[..., None])[..., 0]
    return np.linalg.solve(AtA, Atb[..., None])[..., 0]
