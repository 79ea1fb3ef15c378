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
per cm of the keypoint in the camera frame).  :func:`finger_rows` lays
these rows out for the arrow-shaped normal equations of :mod:`.lm`: a row ``a`` (3,)
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


#: [i, m] = 1 where chain joint m moves finger keypoint i (m <= i), shaped to broadcast
#: over (4 i, 2 r, 4 m, 3, T, 5).
_MOVES = torch.tril(torch.ones(4, 4)).view(4, 1, 4, 1, 1, 1)


def finger_rows(lever: torch.Tensor, rows: torch.Tensor, res: torch.Tensor, kp_idx: torch.Tensor):
    """The image rows of the fingers' keypoints as one Jacobian per frame and finger.

    lever: (4 i, 4 m, 3, T, 5) lever arms (cm) of the fingers' keypoints to their chain
    joints (unmasked).  rows (T, 21, 2, 3), res (T, 21, 2) from :func:`evaluate`.
    kp_idx: (20,) public indices of the fingers' keypoints.
    Returns (J (8, 15, T, 5): rows (keypoint i, image axis r), columns translation (cm),
    wrist rotation vector, the finger's three rotation vectors (rad); e (8, T, 5)).
    """
    T = rows.shape[0]
    a = rows.index_select(1, kp_idx).view(T, 5, 4, 2, 3).permute(2, 3, 4, 0, 1)  # (4 i, 2 r, 3, T, 5)
    e = res.index_select(1, kp_idx).view(T, 5, 4, 2).permute(2, 3, 0, 1)  # (4 i, 2 r, T, 5)
    # d row / d w_m = c_im x a (zero where joint m does not move keypoint i)
    g = torch.linalg.cross(lever[:, None], a[:, :, None], dim=3) * _MOVES.to(a)  # (4 i, 2 r, 4 m, 3, T, 5)
    J = torch.cat([a, g.flatten(2, 3)], 2).reshape(8, 15, T, 5)
    return J, e.reshape(8, T, 5)


def row_width(rows_per_keypoint: int) -> list[int]:
    """Leading non-zero columns of a finger's rows laid out (keypoint i, component):
    translation and wrist (6) and the ``i`` finger joints above keypoint i (3 each)."""
    return [6 + 3 * i for i in range(4) for _ in range(rows_per_keypoint)]
