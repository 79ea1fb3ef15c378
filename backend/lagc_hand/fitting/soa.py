"""Small dense linear algebra over many frames at once, "structure of arrays".

A batch of matrices is one tensor with the matrix axes first and the batch
last, e.g. (9, 9, T, 5) = a 9x9 matrix per frame and finger; every routine is
a short sequence of elementwise torch operations over whole rows or columns.
For the 3x3 .. 9x9 systems of the fit this is several times faster on CPU than
torch's batched LAPACK/BLAS calls, whose per-matrix overhead dominates at these
sizes.
"""
from __future__ import annotations

import torch


def _lead(x: torch.Tensor, extra: int) -> torch.Tensor:
    """``x`` (*batch) shaped to broadcast against (*extra dims, *batch)."""
    return x.view((1,) * extra + x.shape)


def cholesky(A: torch.Tensor, tiny: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lower Cholesky factor of symmetric positive definite matrices ``A`` (n, n, *batch).

    Returns (L (n, n, *batch), lower triangle filled, the rest zero; inv_diag
    (n, *batch) = 1 / L[i, i]; ok (*batch) bool: every pivot was > ``tiny``).
    Column by column, each update over all the column's rows and all frames at once.
    Where a pivot fails the factor is garbage but finite; callers reject those.
    """
    n = A.shape[0]
    L = torch.zeros_like(A)
    inv = torch.empty_like(A[0])
    ok = None
    for j in range(n):
        # column j from row j down: A[j:, j] - L[j:, :j] L[j, :j]
        c = A[j:, j].clone()
        for k in range(j):
            c.addcmul_(L[j:, k], L[j, k], value=-1.0)
        good = c[0] > tiny
        ok = good if ok is None else ok & good
        d = torch.sqrt(torch.where(good, c[0], torch.ones_like(c[0])))
        inv[j] = 1.0 / d
        L[j, j] = d
        L[j + 1:, j] = c[1:] * inv[j]
    return L, inv, ok


def forward_sub(L: torch.Tensor, inv: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve L y = b for b (n, *extra, *batch): any number of right-hand sides."""
    extra = b.ndim - L.ndim + 1
    y = torch.empty_like(b)
    for i in range(len(b)):
        s = b[i].clone()
        for k in range(i):
            s.addcmul_(_lead(L[i, k], extra), y[k], value=-1.0)
        y[i] = s * inv[i]
    return y


def back_sub(L: torch.Tensor, inv: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve L^T x = b for b (n, *extra, *batch)."""
    extra = b.ndim - L.ndim + 1
    n = len(b)
    x = torch.empty_like(b)
    for i in range(n - 1, -1, -1):
        s = b[i].clone()
        for k in range(i + 1, n):
            s.addcmul_(_lead(L[k, i], extra), x[k], value=-1.0)
        x[i] = s * inv[i]
    return x


def gram(J: torch.Tensor, e: torch.Tensor, width=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``J^T J`` (n, n, ...) and ``J^T e`` (n, ...) of rows J (r, n, ...) and residuals e (r, ...).

    width: per row, how many leading columns can be non-zero (None: all n); a
    finger keypoint's row only reaches the joints above it, so this halves the work.
    One multiply-add per row over whole arrays: several times faster on CPU than
    einsum or bmm, which reshuffle the trailing frame axes into tiny matrices.
    """
    n = J.shape[1]
    H = J.new_zeros((n, n) + J.shape[2:])
    g = J.new_zeros(J.shape[1:])
    for r in range(J.shape[0]):
        w = n if width is None else int(width[r])
        Jr = J[r, :w]
        H[:w, :w].addcmul_(Jr[:, None], Jr[None])
        g[:w].addcmul_(Jr, e[r])
    return H, g


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
