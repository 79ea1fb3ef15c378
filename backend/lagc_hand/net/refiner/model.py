"""Two-hand graph refiner built from the Linear Graph module's parts (paper eqs. 5-10).

Tokens are the 21 keypoints of each hand on the skeleton graph.  Per level:

1. eqs. 5-6, linear GCN on both hands at once: the left and right joint
   features are concatenated along channels, a residual Chebyshev block
   (:class:`lagc_hand.net.graph_module.GCNBlock`) runs on the skeleton graph,
   and the result is split back;
2. attention over the other hand's tokens: each hand's tokens attend over
   its own and the other hand's tokens (one pre-norm multi-head layer,
   :func:`lagc_hand.net.attention.make_attention`), the own part kept -- the
   paper's vertex-to-image attention with the other hand in the image's place;
3. eqs. 9-10, cross-hand injection with learnt gates a, b in (0, 1):
   ``HF_L = b H_L + (1 - b) H_R``, ``HF_R = a H_R + (1 - a) H_L``.

Heads: a per-joint 3D correction added to the input keypoints (zero at
start, so the untrained refiner returns its input), a per-joint confidence,
and a correction to the weak-perspective relative root
(:func:`.features.initial_roots`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..attention import make_attention
from ..graph_module import GCNBlock
from ..hamba import skeleton_adjacency
from .features import FEATURES


@dataclass
class RefinerNetConfig:
    """dim: token width per hand; levels: GCN + attention + gate rounds;
    heads: attention heads; injection_init: initial gates a, b (eqs. 9-10)."""

    dim: int = 64
    levels: int = 3
    heads: int = 4
    dropout: float = 0.0
    injection_init: float = 0.9

    def to_dict(self) -> dict:
        return asdict(self)


class OtherHandAttention(nn.Module):
    """own (B, 21, C), other (B, 21, C) -> (B, 21, C): own tokens attend over both hands' tokens."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = make_attention("mhsa", dim, heads, dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        n = own.shape[1]
        v = own + self.attn(self.norm(torch.cat([own, other], 1)))[:, :n]
        return v + self.ffn(self.ffn_norm(v))


class TwoHandRefiner(nn.Module):
    """features (B, 2, 21, F), initial roots (B, 2, 3) ->
    ``keypoints3d`` (B, 2, 21, 3) metres root-relative, ``rel_root`` (B, 3)
    metres (right wrist minus left wrist, camera axes), ``confidence`` (B, 2, 21)
    in (0, 1) and ``confidence_logit``.  Hand 0 = left."""

    def __init__(self, cfg: RefinerNetConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.register_buffer("adj", skeleton_adjacency(), persistent=False)
        self.embed = nn.Linear(FEATURES, d)
        self.root_embed = nn.Linear(3, d)
        self.joint_embed = nn.Parameter(torch.zeros(1, 1, 21, d))
        self.hand_embed = nn.Parameter(torch.zeros(1, 2, 1, d))
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        nn.init.trunc_normal_(self.hand_embed, std=0.02)
        self.gcn = nn.ModuleList(GCNBlock(2 * d, cfg.dropout) for _ in range(cfg.levels))
        self.cross = nn.ModuleList(OtherHandAttention(d, cfg.heads, cfg.dropout) for _ in range(cfg.levels))
        g = math.log(cfg.injection_init / (1 - cfg.injection_init))
        self.gate = nn.Parameter(torch.full((cfg.levels, 2), g))  # sigmoid -> (a, b)
        self.kp_head = nn.Linear(d, 3)
        self.conf_head = nn.Linear(d, 1)
        self.rel_head = nn.Sequential(nn.Linear(2 * d + 5, d), nn.GELU(), nn.Linear(d, 3))
        with torch.no_grad():  # corrections start at zero: the untrained refiner returns its input
            for lin in (self.kp_head, self.rel_head[-1]):
                lin.weight.zero_()
                lin.bias.zero_()

    def gates(self) -> torch.Tensor:
        """(levels, 2) learnt (a, b) of eqs. 9-10."""
        return torch.sigmoid(self.gate)

    def forward(self, feats: torch.Tensor, roots: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.embed(feats) + self.root_embed(roots * 2.0)[:, :, None] + self.joint_embed + self.hand_embed
        left, right = x[:, 0], x[:, 1]
        gates = self.gates()
        c = left.shape[-1]
        for t in range(self.cfg.levels):
            h = self.gcn[t](torch.cat([left, right], -1), self.adj)  # eq. 6 Concat, eq. 5 Linear_GCN
            h_l, h_r = h[..., :c], h[..., c:]  # Di-Concat
            h_l, h_r = self.cross[t](h_l, h_r), self.cross[t](h_r, h_l)
            a, b = gates[t, 0], gates[t, 1]
            left, right = b * h_l + (1 - b) * h_r, a * h_r + (1 - a) * h_l  # eqs. 9-10
        tokens = torch.stack([left, right], 1)  # (B, 2, 21, C)
        k3 = feats[..., :3] / 10.0
        kp = k3 + self.kp_head(tokens) / 10.0
        kp = kp - kp[:, :, :1]  # root-relative by construction
        logit = self.conf_head(tokens)[..., 0]
        pooled = tokens.mean(2).flatten(1)  # (B, 2C)
        rel0 = roots[:, 1] - roots[:, 0]
        rel = rel0 + self.rel_head(torch.cat([pooled, rel0 * 2.0, roots[:, :, 2]], -1)) / 10.0
        return {"keypoints3d": kp, "rel_root": rel, "confidence": torch.sigmoid(logit), "confidence_logit": logit}
