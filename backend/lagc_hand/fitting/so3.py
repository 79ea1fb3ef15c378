"""SO(3) helpers for the Gauss-Newton fit: log map and the inverse right Jacobian.

Rotation vectors are radians; matrices act on column vectors.  The exponential
map is :func:`lagc_hand.handmodel.torch_rotations.axis_angle_to_matrix`.
"""
from __future__ import annotations

import torch

from lagc_hand.handmodel.torch_rotations import skew


def rotvec(R: torch.Tensor) -> torch.Tensor:
    """Log map, ``(..., 3, 3)`` -> ``(..., 3)`` rotation vectors (radians).

    Uses ``atan2(|v|, c)`` on the antisymmetric part ``v``: exact and smooth
    near the identity (where finger joints live); poorly conditioned only near
    180 degrees, which the joint limits keep finger joints far from.
    """
    v = 0.5 * torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    c = 0.5 * (R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1.0)
    s = torch.sqrt((v * v).sum(-1) + 1e-12)
    angle = torch.atan2(s, c)
    return v * (angle / s)[..., None]


def inv_right_jacobian(phi: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` rotation vectors -> ``(..., 3, 3)`` inverse right Jacobian of SO(3).

    ``log(exp([phi]) exp([d])) = phi + Jr^-1(phi) d + O(|d|^2)``, so this is
    the derivative of the rotation vector of ``R exp([d]x)`` with respect to a
    local increment ``d`` (radians).  Closed form
    ``I + [phi]x / 2 + (1/t^2 - (1 + cos t) / (2 t sin t)) [phi]x^2`` with
    ``t = |phi|``; the last coefficient tends to 1/12 at ``t = 0`` (series used
    below 1e-2 rad, where the closed form loses digits in float32).
    """
    t2 = (phi * phi).sum(-1)
    small = t2 < 1e-4
    t = torch.sqrt(torch.where(small, torch.ones_like(t2), t2))
    closed = 1.0 / (t * t) - (1.0 + torch.cos(t)) / (2.0 * t * torch.sin(t))
    coef = torch.where(small, 1.0 / 12.0 + t2 / 720.0, closed)
    K = skew(phi)
    eye = torch.eye(3, dtype=phi.dtype, device=phi.device)
    return eye + 0.5 * K + coef[..., None, None] * (K @ K)
