"""Batched rotation conversions in torch (differentiable, device-agnostic).

Matrices act on column vectors; axis-angle vectors are radians; the 6D
representation is the first two *columns* of the matrix, ``(..., 6)`` =
``[c0x, c0y, c0z, c1x, c1y, c1z]`` (Zhou et al. 2019, re-orthonormalised by
Gram-Schmidt).
"""
from __future__ import annotations

import torch


def skew(v: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` -> ``(..., 3, 3)`` cross-product matrices ``[v]_x``."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(v.shape[:-1] + (3, 3))


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, ``(..., 3)`` radians -> ``(..., 3, 3)``.

    Written as ``I + a [r]x + b [r]x^2`` with ``a = sin t / t`` and
    ``b = (1 - cos t) / t^2`` so small angles (and their gradients) stay exact
    through the Taylor branch instead of dividing by ``t``.
    """
    t2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]
    small = t2 < 1e-8
    t2_safe = torch.where(small, torch.ones_like(t2), t2)
    t = torch.sqrt(t2_safe)
    a = torch.where(small, 1.0 - t2 / 6.0, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24.0, (1.0 - torch.cos(t)) / t2_safe)
    k = skew(rotvec)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand(k.shape)
    return eye + a * k + b * (k @ k)


def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """``(..., 6)`` -> ``(..., 3, 3)`` rotation (columns from Gram-Schmidt)."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(m: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` -> ``(..., 6)``: the first two columns."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)
