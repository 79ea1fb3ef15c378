"""Training losses with IntagHand's weights.

Targets (one batch, hand 0 = left):

* ``verts3d`` (B, 2, V, 3), ``joints3d`` (B, 2, 21, 3): metres, training frame;
* ``verts2d`` (B, 2, V, 2), ``joints2d`` (B, 2, 21, 2): crop pixels;
* ``heatmaps`` (B, 42, 64, 64), ``masks`` (B, 2, 64, 64) in [0, 1].

Terms and weights: vertex L1 x100, regressed-joint L1 x100, 2D projection MSE
(on ``uv / size * 2 - 1``) x50, normal consistency x10, edge length x2000
(only when ``use_edge``: IntagHand switches it on after half the epochs),
heatmap MSE x100, mask smooth-L1 (beta 0.05, on sigmoid of the logits) x500;
sub-mesh vertex L1 x100 (mean over the graph levels; the prediction's
``coarse_levels`` against the targets pooled to each level's clusters by
:func:`lagc_hand.net.coarsen.level_pooling`; only when the model gives them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class LossWeights:
    vert3d: float = 100.0
    joint3d: float = 100.0
    proj2d: float = 50.0
    normal: float = 10.0
    edge: float = 2000.0
    heatmap: float = 100.0
    mask: float = 500.0
    submesh: float = 100.0


def unique_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) int64 sorted unique undirected edges of (F, 3) faces."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """verts (..., V, 3), faces (F, 3) -> unit normals (..., F, 3)."""
    a, b, c = verts[..., faces[:, 0], :], verts[..., faces[:, 1], :], verts[..., faces[:, 2], :]
    return F.normalize(torch.cross(b - a, c - a, dim=-1), dim=-1, eps=1e-12)


def normal_loss(pred: torch.Tensor, gt: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean ``|e_hat . n_gt|`` over the three (unit) edges of every face:
    zero when each predicted face lies in the plane of its ground-truth face."""
    n = face_normals(gt, faces)
    total = pred.new_zeros(())
    for i, j in ((0, 1), (1, 2), (2, 0)):
        e = F.normalize(pred[..., faces[:, j], :] - pred[..., faces[:, i], :], dim=-1, eps=1e-12)
        total = total + (e * n).sum(-1).abs().mean()
    return total / 3


def edge_loss(pred: torch.Tensor, gt: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Mean ``| |e_pred| - |e_gt| |`` over unique mesh edges (metres)."""
    lp = (pred[..., edges[:, 0], :] - pred[..., edges[:, 1], :]).norm(dim=-1)
    lg = (gt[..., edges[:, 0], :] - gt[..., edges[:, 1], :]).norm(dim=-1)
    return (lp - lg).abs().mean()


class LAGCLoss(torch.nn.Module):
    def __init__(self, faces: np.ndarray, image_size: int = 256, weights: LossWeights | None = None,
                 level_pooling: list[np.ndarray] | None = None):
        """level_pooling: per graph level (N_t, V) vertex -> cluster-centroid maps
        (coarse to fine), for the sub-mesh term."""
        super().__init__()
        self.pool = torch.nn.ParameterList(
            torch.nn.Parameter(torch.from_numpy(np.asarray(p, dtype=np.float32)), requires_grad=False) for p in (level_pooling or [])
        )
        self.register_buffer("faces", torch.as_tensor(np.asarray(faces), dtype=torch.long), persistent=False)
        self.register_buffer("edges", torch.from_numpy(unique_edges(faces)), persistent=False)
        self.size = float(image_size)
        self.w = weights or LossWeights()

    def forward(self, pred: dict, target: dict, use_edge: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (total, {term: weighted value as float})."""
        f = lambda x: x.float()  # noqa: E731  (losses in fp32 under AMP)
        norm2d = lambda uv: f(uv) / self.size * 2 - 1  # noqa: E731
        pv, gv = f(pred["vertices"]), f(target["verts3d"])
        terms = {
            "vert3d": self.w.vert3d * (pv - gv).abs().mean(),
            "joint3d": self.w.joint3d * (f(pred["joints"]) - f(target["joints3d"])).abs().mean(),
            "proj2d": self.w.proj2d
            * (
                F.mse_loss(norm2d(pred["vertices2d"]), norm2d(target["verts2d"]))
                + F.mse_loss(norm2d(pred["joints2d"]), norm2d(target["joints2d"]))
            ),
            "normal": self.w.normal * normal_loss(pv, gv, self.faces),
            "heatmap": self.w.heatmap * F.mse_loss(f(pred["heatmaps"]), f(target["heatmaps"])),
            "mask": self.w.mask * F.smooth_l1_loss(torch.sigmoid(f(pred["masks"])), f(target["masks"]), beta=0.05),
        }
        if use_edge:
            terms["edge"] = self.w.edge * edge_loss(pv, gv, self.edges)
        if len(self.pool) and "coarse_levels" in pred:
            levels = pred["coarse_levels"]
            if len(levels) != len(self.pool):
                raise ValueError(f"model gives {len(levels)} graph levels, the loss pools to {len(self.pool)}")
            per = [(f(c) - torch.einsum("nv,bhvc->bhnc", p, gv)).abs().mean() for c, p in zip(levels, self.pool)]
            terms["submesh"] = self.w.submesh * sum(per) / len(per)
        total = sum(terms.values())
        return total, {k: float(v.detach()) for k, v in terms.items()}
