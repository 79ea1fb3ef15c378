"""The image term of the fit: reprojection of the model's keypoints onto the detector's 2D.

Per keypoint ``k`` of frame ``t`` the pixel residual ``d = pi(K, p_k) - u_k`` is
measured in hand sizes (divided by the detector's 2D hand size ``size_t`` in px)
and expressed in "cm-equivalent" (times :data:`HAND_CM`), so its weight compares
with the 3D keypoint term (cm^2) the same way on a 40-px and a 400-px hand.  The
cost is robust (Huber on the norm of the 2-vector, threshold ``delta``) and
confidence weighted::

    w_tk * huber(|d_tk| * HAND_CM / size_t, delta)

Gauss-Newton uses iteratively re-weighted rows: with the Huber weight ``h``
frozen at the current residual, the residual rows are ``sqrt(w h) * e`` and
their derivatives ``sqrt(w h) * HAND_CM / size * dpi/dp`` (2 x 3 per keypoint,
per cm of the keypoint in the camera frame).  :func:`add_normal_terms` adds
these rows to the arrow-shaped normal equations of :mod:`.lm`: a row ``a`` (3,)
of keypoint ``i`` gives ``a`` for the translation and ``c_im x a`` for the
world rotation vector of chain joint ``m`` (``c_im`` its lever arm), because
``dp_i/dw_m = -[c_im]x``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: Nominal hand size (cm) a residual of one hand size stands for.  Max side of the
#: 2D keypoint box of an open adult hand, wrist to middle fingertip: ~18 cm.
HAND_CM = 18.0
#: Depth below which a keypoint is treated as sitting on the camera (cm); keeps the
#: projection finite for a hand that a bad step pushed behind the camera.
MIN_Z_CM = 1.0


@dataclass
class ImageTerm:
    """Detector 2D keypoints of ``T`` frames and how much they count.

    uv:       (T, 21, 2) pixels, public order (x right, y down, origin top-left).
    K:        (3, 3) pinhole intrinsics in pixels (fx, fy, cx, cy are used; no skew).
    weight:   (T, 21) >= 0, relative to the 3D term (per-frame confidence x option weight).
    px_to_cm: (T,) HAND_CM / 2D hand size (px) of the frame.
    delta:    Huber threshold in cm-equivalent (HAND_CM x hand sizes).
    """

    uv: torch.Tensor
    K: torch.Tensor
    weight: torch.Tensor
    px_to_cm: torch.Tensor
    delta: float


def hand_size_px(uv: np.ndarray) -> np.ndarray:
    """(T,) max side of the box around the 21 keypoints (T, 21, 2), at least 1 px."""
    uv = np.asarray(uv, np.float64)
    return np.maximum((uv.max(1) - uv.min(1)).max(-1), 1.0)


def make_image_term(uv: np.ndarray, K: np.ndarray, confidence: np.ndarray, weight: float, delta_hands: float,
                    dtype: torch.dtype, device) -> ImageTerm:
    """An :class:`ImageTerm` from numpy inputs: uv (T, 21, 2) px, K (3, 3), confidence (T,) or (T, 21)."""
    uv = np.asarray(uv, np.float64)
    conf = np.asarray(confidence, np.float64)
    if conf.ndim == 1:
        conf = np.repeat(conf[:, None], 21, 1)
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    return ImageTerm(t(uv), t(np.asarray(K, np.float64)), t(np.clip(conf, 0, None) * weight),
                     t(HAND_CM / hand_size_px(uv)), float(delta_hands * HAND_CM))


def project(kp: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(T, N, 3) camera-frame points (any unit) -> (T, N, 2) pixels through K."""
    z = kp[..., 2].clamp_min(1e-9)
    return torch.stack([K[0, 0] * kp[..., 0] / z + K[0, 2], K[1, 1] * kp[..., 1] / z + K[1, 2]], -1)


def evaluate(term: ImageTerm, kp_cm: torch.Tensor):
    """Residual rows of the image term at model keypoints ``kp_cm`` (T, 21, 3) cm.

    Returns (res (T, 21, 2) IRLS-weighted residuals, rows (T, 21, 2, 3) their
    derivatives per cm of the keypoint, cost (T,) robust cost).
    """
    K = term.K
    z = kp_cm[..., 2].clamp_min(MIN_Z_CM)
    x, y = kp_cm[..., 0] / z, kp_cm[..., 1] / z
    s = term.px_to_cm[:, None]
    d = torch.stack([K[0, 0] * x + K[0, 2] - term.uv[..., 0],
                     K[1, 1] * y + K[1, 2] - term.uv[..., 1]], -1) * s[..., None]
    n = torch.sqrt((d * d).sum(-1) + 1e-12)
    inside = n <= term.delta
    hub = torch.where(inside, torch.ones_like(n), term.delta / n)
    cost = (term.weight * torch.where(inside, n * n, 2.0 * term.delta * n - term.delta ** 2)).sum(1)
    sw = torch.sqrt(term.weight * hub)
    res = d * sw[..., None]
    g = (sw * s) / z
    zero = torch.zeros_like(g)
    rows = torch.stack([torch.stack([g * K[0, 0], zero, -g * K[0, 0] * x], -1),
                        torch.stack([zero, g * K[1, 1], -g * K[1, 1] * y], -1)], -2)
    return res, rows, cost


def _cross(u, a):
    """u x a for 3-lists of equally shaped arrays."""
    return [u[1] * a[2] - u[2] * a[1], u[2] * a[0] - u[0] * a[2], u[0] * a[1] - u[1] * a[0]]


def add_normal_terms(lever: torch.Tensor, rows: torch.Tensor, res: torch.Tensor, kp_idx: torch.Tensor,
                     A: list, B: list, Hg: list, gf: list, gg: list) -> None:
    """Add the image rows to the normal equations of :meth:`.lm.PoseProblem._normal_soa` in place.

    lever: (4 i, 4 m, 3, T, 5) lever arms (cm) of the fingers' keypoints to their chain
    joints (unmasked; only m <= i is used).  rows (T, 21, 2, 3), res (T, 21, 2) from
    :func:`evaluate`.  kp_idx: (20,) public indices of the fingers' keypoints.
    A[9][9], B[9][6], gf[9]: (T, 5) arrays; Hg[6][6], gg[6]: (T,) arrays (see lm).
    """
    T = rows.shape[0]
    a = rows.index_select(1, kp_idx).view(T, 5, 4, 2, 3).permute(2, 3, 4, 0, 1)  # (4 i, 2 r, 3, T, 5)
    e = res.index_select(1, kp_idx).view(T, 5, 4, 2).permute(2, 3, 0, 1)  # (4 i, 2 r, T, 5)
    # g[i][r][m]: derivative of row (i, r) by the world rotation vector of chain joint m
    g = [[[_cross(lever[i, m], a[i, r]) for m in range(i + 1)] for r in range(2)] for i in range(4)]
    terms = [(i, r) for i in range(4) for r in range(2)]

    def rsum(m, f):
        """sum over the rows of keypoints moved by chain joint m of f(i, r)."""
        return sum(f(i, r) for i, r in terms if i >= m)

    for m in range(1, 4):
        for n in range(m, 4):
            for y in range(3):
                for z in range(3):
                    if m == n and z < y:
                        continue
                    v = rsum(max(m, n), lambda i, r: g[i][r][m][y] * g[i][r][n][z])
                    p, q = 3 * (m - 1) + y, 3 * (n - 1) + z
                    A[p][q] = A[p][q] + v
                    if (p, q) != (q, p):
                        A[q][p] = A[q][p] + v
        for y in range(3):
            p = 3 * (m - 1) + y
            for z in range(3):
                B[p][z] = B[p][z] + rsum(m, lambda i, r: g[i][r][m][y] * a[i, r, z])
                B[p][3 + z] = B[p][3 + z] + rsum(m, lambda i, r: g[i][r][m][y] * g[i][r][0][z])
            gf[p] = gf[p] + rsum(m, lambda i, r: g[i][r][m][y] * e[i, r])
    # global block: translation (cm) and wrist rotation, summed over fingers, plus the wrist keypoint
    a0, e0 = rows[:, 0].permute(1, 2, 0), res[:, 0].T  # (2 r, 3, T), (2 r, T)
    glob_cols = [[a[i, r, z] for z in range(3)] + g[i][r][0] for i, r in terms]  # 6 arrays of (T, 5) per row
    for c in range(6):
        for d in range(c, 6):
            v = sum(col[c] * col[d] for col in glob_cols).sum(1)
            if c < 3 and d < 3:
                v = v + (a0[:, c] * a0[:, d]).sum(0)
            Hg[c][d] = Hg[c][d] + v
            if d != c:
                Hg[d][c] = Hg[d][c] + v
        v = sum(col[c] * e[i, r] for col, (i, r) in zip(glob_cols, terms)).sum(1)
        if c < 3:
            v = v + (a0[:, c] * e0).sum(0)
        gg[c] = gg[c] + v
