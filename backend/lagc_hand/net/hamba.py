"""Hamba graph-guided state-space (GSS) head, in plain PyTorch.

After Hamba (graph-guided bi-scanning Mamba): image tokens are sampled at the
hand's 2D joints (bilinear ``grid_sample``), a stack of GSS blocks mixes the
21 joint tokens with (a) a bi-directional selective scan (Mamba-style SSM with
input-dependent step Δ and matrices B, C, discretised ``A_bar = exp(Δ A)``,
sequential scan over the 21 tokens in joint order and in reverse) and (b) a
GCN over the hand skeleton, and a fusion module combines the GSS tokens, the
global token mean and the 2D joints to regress the mesh (through the same
coarse graph nodes and fixed upsampling as the Linear Graph module) and the
weak-perspective camera.  No custom CUDA: the scan is a loop of 21 steps.

Output (``hamba.output``): by default the fusion MLP's last layer regresses
per-node deltas on the template's coarse nodes and its hidden layer a per-hand
rotation and translation (:class:`lagc_hand.net.anchor.PosedTemplate`, shared
with the graph head).  Regressing raw coordinates (``direct``) behaved as the
graph decoder's did: tiny config, 16 samples, Adam 5e-3, the predicted
wrist-to-middle-MCP length went 189 -> 528 -> 45 mm in 60 steps and held-out
MPJPE rose 130 -> 201 mm (bench/RESULTS.md, Hamba section).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lagc_hand_blender.core.skeleton import PUBLIC_PARENTS

from .anchor import PosedTemplate
from .config import HambaConfig


def skeleton_adjacency() -> torch.Tensor:
    """(21, 21) normalised adjacency ``D^-1/2 (A + I) D^-1/2`` of the public-order skeleton."""
    a = np.eye(21)
    for j, p in enumerate(PUBLIC_PARENTS):
        if p >= 0:
            a[j, p] = a[p, j] = 1.0
    d = 1.0 / np.sqrt(a.sum(1))
    return torch.from_numpy((a * d[:, None] * d[None, :]).astype(np.float32))


def selective_scan(x: torch.Tensor, delta: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Sequential selective scan (Mamba S6 recurrence).

    x, delta: (B, L, D); a: (D, N) (negative); b, c: (B, L, N); d: (D,).
    ``h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t``, ``y_t = C_t h_t + D x_t``.
    Returns y (B, L, D)."""
    bsz, length, dim = x.shape
    h = x.new_zeros(bsz, dim, a.shape[1])
    a_bar = torch.exp(delta.unsqueeze(-1) * a)  # (B, L, D, N)
    bx = (delta * x).unsqueeze(-1) * b.unsqueeze(2)  # (B, L, D, N)
    ys = []
    for t in range(length):
        h = a_bar[:, t] * h + bx[:, t]
        ys.append(torch.einsum("bdn,bn->bd", h, c[:, t]))
    return torch.stack(ys, dim=1) + x * d


class SelectiveSSM(nn.Module):
    """One Mamba mixer: in-proj to (x, z), causal depth-wise conv, SiLU,
    input-dependent (Δ, B, C), scan, gate by SiLU(z), out-proj.  (B, L, d) -> (B, L, d)."""

    def __init__(self, d_model: int, d_state: int, expand: int, d_conv: int):
        super().__init__()
        inner = expand * d_model
        self.inner = inner
        self.d_state = d_state
        self.dt_rank = max(1, math.ceil(d_model / 16))
        self.in_proj = nn.Linear(d_model, 2 * inner)
        self.conv = nn.Conv1d(inner, inner, d_conv, padding=d_conv - 1, groups=inner)
        self.x_proj = nn.Linear(inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, inner)
        # S4D-real initialisation: A = -(1..N) per channel.
        self.a_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(inner, 1))
        self.d = nn.Parameter(torch.ones(inner))
        with torch.no_grad():
            # Δ starts in [1e-3, 1e-1] (log-uniform), as Mamba does.
            dt = torch.exp(torch.rand(inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.out_proj = nn.Linear(inner, d_model)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        length = u.shape[1]
        x, z = self.in_proj(u).chunk(2, dim=-1)
        x = F.silu(self.conv(x.transpose(1, 2))[..., :length].transpose(1, 2))
        dbc = self.x_proj(x)
        dt, b, c = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        y = selective_scan(x, delta, -torch.exp(self.a_log), b, c, self.d)
        return self.out_proj(y * F.silu(z))


class GSSBlock(nn.Module):
    """Graph-guided state-space block over joint tokens (B, 21, d):
    ``x + SSM_fwd(LN x) + flip(SSM_bwd(flip(LN x))) + GCN(LN x)``, then an FFN."""

    def __init__(self, cfg: HambaConfig):
        super().__init__()
        d = cfg.d_model
        self.norm = nn.LayerNorm(d)
        self.fwd = SelectiveSSM(d, cfg.d_state, cfg.expand, cfg.d_conv)
        self.bwd = SelectiveSSM(d, cfg.d_state, cfg.expand, cfg.d_conv)
        self.gcn = nn.Linear(d, d)
        self.register_buffer("adj", skeleton_adjacency(), persistent=False)
        self.ffn_norm = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        scan = self.fwd(h) + self.bwd(h.flip(1)).flip(1)
        graph = torch.relu(torch.matmul(self.adj, self.gcn(h)))
        x = x + scan + graph
        return x + self.ffn(self.ffn_norm(x))


def soft_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """heatmaps (B, J, H, W) -> (B, J, 2) expected position in [-1, 1]
    (x, y; ``align_corners=False`` pixel centres)."""
    b, j, h, w = heatmaps.shape
    p = torch.softmax(heatmaps.reshape(b, j, -1) * 20.0, dim=-1).reshape(b, j, h, w)
    xs = (torch.arange(w, device=heatmaps.device, dtype=heatmaps.dtype) + 0.5) / w * 2 - 1
    ys = (torch.arange(h, device=heatmaps.device, dtype=heatmaps.dtype) + 0.5) / h * 2 - 1
    return torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], dim=-1)


class HambaHead(nn.Module):
    """feature map (B, C, S, S), heatmaps (B, 42, 64, 64), global (B, C_g) ->
    ``coarse`` (B, 2, N, 3), ``vertices`` (B, 2, V, 3), ``camera`` (B, 2, 3),
    ``joints2d_hm`` (B, 2, 21, 2) in [-1, 1] (the sampling points)."""

    def __init__(self, cfg: HambaConfig, feat_channels: int, global_dim: int, upsample: np.ndarray, anchor=None):
        """anchor: (2, N, 3) template coarse nodes in the training frame
        (:func:`lagc_hand.net.anchor.template_anchor`), required when
        ``cfg.output == "posed_template"``."""
        super().__init__()
        d = cfg.d_model
        self.token_proj = nn.Linear(feat_channels, d)
        self.joint_embed = nn.Parameter(torch.zeros(2, 21, d))
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        self.blocks = nn.ModuleList(GSSBlock(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d)
        n_coarse = upsample.shape[1]
        self.n_coarse = n_coarse
        fused = 21 * d + d + global_dim + 21 * 2
        hidden = 256
        self.fusion = nn.Sequential(nn.Linear(fused, hidden), nn.GELU(), nn.Linear(hidden, n_coarse * 3 + 3))
        with torch.no_grad():
            self.fusion[-1].bias.zero_()
            self.fusion[-1].bias[-3] = 4.0
        self.posed = None
        if cfg.output == "posed_template":
            if anchor is None:
                raise ValueError("hamba output 'posed_template' needs the template anchor")
            # the per-hand pose from the fusion MLP's hidden layer (per hand already)
            self.posed = PosedTemplate(anchor, hidden)
            with torch.no_grad():
                # deltas start at zero: the first prediction is the template itself
                self.fusion[-1].weight[:-3].zero_()
        self.register_buffer("upsample", torch.from_numpy(upsample), persistent=True)

    def forward(self, fmap: torch.Tensor, heatmaps: torch.Tensor, global_feat: torch.Tensor) -> dict[str, torch.Tensor]:
        b = fmap.shape[0]
        joints = soft_argmax(heatmaps).reshape(b, 2, 21, 2).detach()
        # token sampler: bilinear features at the 2D joints, per hand
        grid = joints.reshape(b, 2 * 21, 1, 2)
        tok = F.grid_sample(fmap, grid, mode="bilinear", align_corners=False).squeeze(-1).transpose(1, 2)  # (B, 42, C)
        tok = self.token_proj(tok).reshape(b, 2, 21, -1) + self.joint_embed
        x = tok.reshape(b * 2, 21, -1)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x).reshape(b, 2, 21, -1)
        fused = torch.cat(
            [x.flatten(2), x.mean(2), global_feat.unsqueeze(1).expand(b, 2, -1), joints.flatten(2)], dim=-1
        )
        hidden = self.fusion[1](self.fusion[0](fused))  # (B, 2, 256)
        out = self.fusion[2](hidden)
        coarse = out[..., :-3].reshape(b, 2, self.n_coarse, 3)
        if self.posed is not None:
            coarse = self.posed(hidden, coarse)["coarse"]
        # rows of upsample sum to 1, so it commutes with the rigid motion above
        verts = torch.einsum("vn,bhnc->bhvc", self.upsample, coarse)
        return {"coarse": coarse, "vertices": verts, "camera": out[..., -3:], "joints2d_hm": joints}
