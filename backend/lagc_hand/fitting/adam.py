"""A minimal Adam for the fitting stages.

``torch.optim.Adam`` imports ``torch._dynamo`` when first constructed, which
costs 2-3 s of start-up per process on our CPU machines: more than fitting a
whole clip.  The fits need nothing but plain Adam with per-group learning
rates and an optional cosine schedule, which is this.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


class Adam:
    """Adam (Kingma & Ba) over groups of tensors.

    groups: ``[(params, lr), ...]``; each ``params`` a sequence of leaf tensors
    with ``requires_grad``.  ``step()`` uses and clears their ``.grad``.
    """

    def __init__(self, groups: Sequence[tuple[Sequence[torch.Tensor], float]],
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.groups = [([p for p in params if p.requires_grad], float(lr)) for params, lr in groups]
        self.base_lrs = [lr for _, lr in self.groups]
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0
        self.m = {id(p): torch.zeros_like(p) for params, _ in self.groups for p in params}
        self.v = {id(p): torch.zeros_like(p) for params, _ in self.groups for p in params}

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self, lr_scale: float = 1.0) -> None:
        """One update; ``lr_scale`` multiplies every group's learning rate."""
        self.t += 1
        c1 = 1.0 - self.b1 ** self.t
        c2 = 1.0 - self.b2 ** self.t
        for params, lr in self.groups:
            step = lr * lr_scale / c1
            for p in params:
                if p.grad is None:
                    continue
                m, v = self.m[id(p)], self.v[id(p)]
                m.mul_(self.b1).add_(p.grad, alpha=1.0 - self.b1)
                v.mul_(self.b2).addcmul_(p.grad, p.grad, value=1.0 - self.b2)
                p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-step)


def cosine_scale(step: int, total: int, floor: float) -> float:
    """Cosine annealing factor from 1 at ``step=0`` to ``floor`` at ``step=total``."""
    if total <= 0:
        return 1.0
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
