"""Small dense linear algebra over many frames at once, "structure of arrays".

A matrix is a nested list of equally shaped tensors (one per entry, e.g.
(T, 5) = one value per frame and finger); every routine is a short sequence of
elementwise torch operations over those arrays.  For the 3x3 .. 9x9 systems of
the fit this is several times faster on CPU than torch's batched LAPACK/BLAS
calls, whose per-matrix overhead dominates at these sizes, and it needs no
packing into (..., n, n) tensors.
"""
from __future__ import annotations

import torch


def cholesky(A: list, tiny: float = 1e-12) -> tuple[list, list, torch.Tensor]:
    """Lower Cholesky factor of a symmetric positive definite ``A`` (n x n lists).

    Returns (L (lower triangle as lists, L[i][j] for j <= i), inv_diag (n) =
    1 / L[i][i], ok (bool array): every pivot was > ``tiny`` and finite).
    Where a pivot fails the factor is garbage but finite; callers reject those.
    """
    n = len(A)
    L = [[None] * (i + 1) for i in range(n)]
    inv = [None] * n
    ok = None
    for j in range(n):
        s = A[j][j]
        for k in range(j):
            s = torch.addcmul(s, L[j][k], L[j][k], value=-1.0)
        good = s > tiny
        ok = good if ok is None else ok & good
        d = torch.sqrt(torch.where(good, s, torch.ones_like(s)))
        L[j][j] = d
        inv[j] = 1.0 / d
        for i in range(j + 1, n):
            s = A[i][j]
            for k in range(j):
                s = torch.addcmul(s, L[i][k], L[j][k], value=-1.0)
            L[i][j] = s * inv[j]
    return L, inv, ok


def forward_sub(L: list, inv: list, b: list) -> list:
    """Solve L y = b (b: n arrays)."""
    y = []
    for i in range(len(b)):
        s = b[i]
        for k in range(i):
            s = torch.addcmul(s, L[i][k], y[k], value=-1.0)
        y.append(s * inv[i])
    return y


def back_sub(L: list, inv: list, b: list) -> list:
    """Solve L^T x = b (b: n arrays)."""
    n = len(b)
    x = [None] * n
    for i in range(n - 1, -1, -1):
        s = b[i]
        for k in range(i + 1, n):
            s = torch.addcmul(s, L[k][i], x[k], value=-1.0)
        x[i] = s * inv[i]
    return x


def dot(a: list, b: list) -> torch.Tensor:
    """sum_k a[k] * b[k]."""
    s = a[0] * b[0]
    for k in range(1, len(a)):
        s = torch.addcmul(s, a[k], b[k])
    return s


def rotate_right(R: torch.Tensor, G: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``R @ exp([G^T w]x)`` for (..., 3, 3) rotations R, G and (..., 3) rotation vectors w.

    The world-axis increment ``w`` (radians) becomes the local ``d = G^T w``;
    Rodrigues' formula and both products are written per entry.
    """
    shape = R.shape
    Rs = R.reshape(-1, 9).T.contiguous()  # (9, n): entry (i, j) at 3 i + j
    Gs = G.reshape(-1, 9).T.contiguous()
    ws = w.reshape(-1, 3).T.contiguous()
    d = [Gs[i] * ws[0] + Gs[3 + i] * ws[1] + Gs[6 + i] * ws[2] for i in range(3)]  # G^T w
    t2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    small = t2 < 1e-8
    t2s = torch.where(small, torch.ones_like(t2), t2)
    t = torch.sqrt(t2s)
    a = torch.where(small, 1.0 - t2 / 6.0, torch.sin(t) / t)
    b = torch.where(small, 0.5 - t2 / 24.0, (1.0 - torch.cos(t)) / t2s)
    # exp = I + a [d]x + b [d]x^2,  [d]x^2 = d d^T - |d|^2 I
    ad = [a * x for x in d]
    bd = [b * x for x in d]
    diag = 1.0 - b * t2
    K = [[None, -ad[2], ad[1]], [ad[2], None, -ad[0]], [-ad[1], ad[0], None]]
    E = [[diag + bd[i] * d[i] if i == j else K[i][j] + bd[i] * d[j] for j in range(3)] for i in range(3)]
    out = [Rs[3 * i] * E[0][j] + Rs[3 * i + 1] * E[1][j] + Rs[3 * i + 2] * E[2][j] for i in range(3) for j in range(3)]
    return torch.stack(out, -1).view(shape)
