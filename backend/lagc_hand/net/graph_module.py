"""Linear Graph module (paper eqs. 5-10).

Per graph level t (coarse to fine, e.g. 63 -> 126 -> 252 nodes for MANO):

1. eqs. 5-6, linear GCN on both hands at once: the left and right vertex
   features are concatenated along channels, ``Linear_GCN`` (Chebyshev K=2,
   ``Linear([X, A X])`` with the normalised adjacency A, residual blocks) runs
   on the concatenation, and the result is split back (``Di-Concat``);
2. eqs. 7-8, vertex-to-image attention: the vertex tokens of each hand are
   concatenated with image tokens (the pyramid map at level t pooled to an
   8x8 grid by a strided conv) and pass one self-attention layer; the vertex
   part is kept;
3. eqs. 9-10, cross-hand injection with learnt gates a, b in (0, 1):
   ``HF_L = b H_L + (1 - b) H_R`` and ``HF_R = a H_R + (1 - a) H_L``.

Between levels the binary-tree graph ordering makes upsampling a
``repeat_interleave(2)``; after the last level a fixed linear map
(:class:`~lagc_hand.net.coarsen.GraphHierarchy` ``upsample``) gives the full mesh.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .anchor import DELTA_SCALE, PosedTemplate
from .attention import make_attention
from .coarsen import GraphHierarchy
from .config import GraphConfig


class ChebConv(nn.Module):
    """K=2 Chebyshev graph conv: ``y = W [x, A x] + b``.  x: (B, N, C_in)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.lin = nn.Linear(2 * cin, cout)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cat([x, torch.matmul(adj, x)], dim=-1))


class GCNBlock(nn.Module):
    """Residual block: cheb -> LN -> ReLU -> cheb -> dropout, + x, LN."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.conv1 = ChebConv(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.conv2 = ChebConv(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x, adj)))
        y = self.drop(self.conv2(y, adj))
        return self.norm2(x + y)


class VertexImageAttention(nn.Module):
    """eqs. 7-8.  vertices (B, N, C), image (B, Ci, S, S) -> (B, N, C)."""

    def __init__(self, dim: int, image_channels: int, image_dim: int, image_size: int, grid: int, kind: str, heads: int, dropout: float):
        super().__init__()
        k = image_size // grid
        self.to_grid = nn.Conv2d(image_channels, image_dim, k, k)
        self.to_tokens = nn.Linear(image_dim, dim)
        self.pos = nn.Parameter(torch.zeros(1, grid * grid, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.norm = nn.LayerNorm(dim)
        self.attn = make_attention(kind, dim, heads, dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, verts: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        tokens = self.to_tokens(self.to_grid(image).flatten(2).transpose(1, 2)) + self.pos
        n = verts.shape[1]
        x = torch.cat([verts, tokens], dim=1)
        v = verts + self.attn(self.norm(x))[:, :n]
        return v + self.ffn(self.ffn_norm(v))


class LinearGraphModule(nn.Module):
    """global (B, C_g), pyramid [(B, p_t, 8*2^t, 8*2^t)] ->
    ``vertices`` (B, 2, V, 3) metres, ``coarse`` (B, 2, N_last, 3) and
    ``camera`` (B, 2, 3) weak perspective (scale, tx, ty) per hand; hand 0 = left."""

    def __init__(self, cfg: GraphConfig, hierarchy: GraphHierarchy, global_dim: int, pyramid_channels: tuple[int, ...],
                 anchor=None, level_anchors=None):
        """anchor: (2, N_last, 3) template nodes in the training frame
        (:func:`lagc_hand.net.anchor.template_anchor`), required when
        ``cfg.output == "posed_template"``; level_anchors: the same for every
        coarser level [(2, N_t, 3)], needed with ``cfg.submesh`` and that output."""
        super().__init__()
        if len(hierarchy.sizes) != cfg.levels:
            raise ValueError(f"graph hierarchy has {len(hierarchy.sizes)} levels, config wants {cfg.levels}")
        self.sizes = hierarchy.sizes
        dims = cfg.dims
        for t, a in enumerate(hierarchy.adjacency):
            self.register_buffer(f"adj{t}", torch.from_numpy(a), persistent=True)
        pos0 = torch.from_numpy(hierarchy.positions[0])
        pos0 = (pos0 - pos0.mean(0)) / pos0.abs().max().clamp_min(1e-9)
        # Positional code of the coarsest nodes (template centroids, unit size);
        # the left hand is the mirror image, so x flips.
        mirror = torch.tensor([-1.0, 1.0, 1.0])
        self.register_buffer("pos_code", torch.stack([pos0 * mirror, pos0]), persistent=True)  # (2, N0, 3)
        self.global_to_verts = nn.Sequential(nn.Linear(global_dim, 2 * (dims[0] - 3)), nn.LayerNorm(2 * (dims[0] - 3)))
        self.vertex_embed = nn.Parameter(torch.zeros(1, self.sizes[0], dims[0]))
        nn.init.trunc_normal_(self.vertex_embed, std=0.02)
        self.gcn = nn.ModuleList(
            nn.ModuleList(GCNBlock(2 * d, cfg.dropout) for _ in range(cfg.gcn_blocks)) for d in dims
        )
        self.hand_embed = nn.ParameterList(nn.Parameter(torch.zeros(2, 1, d)) for d in dims)
        self.img_attn = nn.ModuleList(
            VertexImageAttention(d, pyramid_channels[t], cfg.image_dims[t], 8 * 2**t, cfg.grid, cfg.attention, cfg.heads, cfg.dropout)
            for t, d in enumerate(dims)
        )
        g = math.log(cfg.injection_init / (1 - cfg.injection_init))
        # raw gates, sigmoid -> a (right keeps), b (left keeps); eqs. 9-10
        self.gate = nn.Parameter(torch.full((len(dims), 2), g))
        self.level_proj = nn.ModuleList(nn.Linear(dims[t], dims[t + 1]) for t in range(len(dims) - 1))
        self.coord_head = nn.Linear(dims[-1], 3)
        self.posed = None
        if cfg.output == "posed_template":
            if anchor is None:
                raise ValueError("graph output 'posed_template' needs the template anchor")
            # pose from the pooled vertex features and the global image feature
            self.posed = PosedTemplate(anchor, dims[-1] + global_dim)
            with torch.no_grad():
                # deltas start at zero: the first prediction is the template itself
                self.coord_head.weight.zero_()
                self.coord_head.bias.zero_()
        # IntagHand's sub-mesh outputs: coordinates at every coarser level, for
        # the per-level vertex loss (training only; inference never runs them)
        self.submesh_heads = None
        if cfg.submesh and len(dims) > 1:
            self.submesh_heads = nn.ModuleList(nn.Linear(dims[t], 3) for t in range(len(dims) - 1))
            if self.posed is not None:
                if level_anchors is None or len(level_anchors) < len(dims) - 1:
                    raise ValueError("graph submesh heads with 'posed_template' output need the per-level anchors")
                for t in range(len(dims) - 1):
                    self.register_buffer(f"level_anchor{t}", torch.as_tensor(np.asarray(level_anchors[t], dtype=np.float32)),
                                         persistent=False)
                with torch.no_grad():
                    for head in self.submesh_heads:
                        head.weight.zero_()
                        head.bias.zero_()
        self.cam_head = nn.Linear(dims[-1], 3)
        with torch.no_grad():
            # start near the crop-filling scale of a ~0.2 m two-hand box
            self.cam_head.bias.copy_(torch.tensor([4.0, 0.0, 0.0]))
        up = torch.from_numpy(hierarchy.upsample)
        if cfg.learn_upsample:
            self.upsample = nn.Parameter(up)
        else:
            self.register_buffer("upsample", up, persistent=True)

    def gates(self) -> torch.Tensor:
        """(levels, 2) learnt (a, b) of eqs. 9-10."""
        return torch.sigmoid(self.gate)

    def forward(self, global_feat: torch.Tensor, pyramid: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        b = global_feat.shape[0]
        n0 = self.sizes[0]
        g = self.global_to_verts(global_feat).reshape(b, 2, 1, -1).expand(b, 2, n0, -1)
        pos = self.pos_code.unsqueeze(0).expand(b, 2, n0, 3)
        x = torch.cat([g, pos], dim=-1) + self.vertex_embed.unsqueeze(1)  # (B, 2, N0, C0)
        left, right = x[:, 0], x[:, 1]
        gates = self.gates()
        level_feats = []
        for t in range(len(self.sizes)):
            adj = getattr(self, f"adj{t}")
            c = left.shape[-1]
            h = torch.cat([left, right], dim=-1)  # eq. 6: Concat(L_f, R_f)
            for block in self.gcn[t]:
                h = block(h, adj)
            left, right = h[..., :c], h[..., c:]  # eq. 5: Di-Concat
            both = torch.cat([left + self.hand_embed[t][0], right + self.hand_embed[t][1]], dim=0)
            img = pyramid[t]
            both = self.img_attn[t](both, torch.cat([img, img], dim=0))  # eqs. 7-8
            h_l, h_r = both[:b], both[b:]
            a, bb = gates[t, 0], gates[t, 1]
            left = bb * h_l + (1 - bb) * h_r  # eq. 9
            right = a * h_r + (1 - a) * h_l  # eq. 10
            if t + 1 < len(self.sizes):
                level_feats.append(torch.stack([left, right], dim=1))
                left = self.level_proj[t](left.repeat_interleave(2, dim=1))
                right = self.level_proj[t](right.repeat_interleave(2, dim=1))
        feats = torch.stack([left, right], dim=1)  # (B, 2, N, C)
        pooled = feats.mean(dim=2)  # (B, 2, C)
        coarse = self.coord_head(feats)
        pose = None
        if self.posed is not None:
            gfe = global_feat.unsqueeze(1).expand(b, 2, global_feat.shape[-1])
            pose = self.posed(torch.cat([pooled, gfe], dim=-1), coarse)
            coarse = pose["coarse"]
        # rows of upsample sum to 1, so it commutes with the rigid motion above
        verts = torch.einsum("vn,bhnc->bhvc", self.upsample, coarse)
        camera = self.cam_head(pooled)
        out = {"vertices": verts, "coarse": coarse, "camera": camera}
        if self.training and self.submesh_heads is not None:
            out["coarse_levels"] = [self._level_coords(t, f, pose) for t, f in enumerate(level_feats)] + [coarse]
        return out

    def _level_coords(self, t: int, feats: torch.Tensor, pose: dict | None) -> torch.Tensor:
        """Level-t features (B, 2, N_t, C_t) -> coordinates (B, 2, N_t, 3) in the
        training frame; anchored outputs share the finest level's hand pose."""
        delta = self.submesh_heads[t](feats)
        if pose is None:
            return delta
        local = getattr(self, f"level_anchor{t}").unsqueeze(0) + DELTA_SCALE * delta
        return torch.einsum("bhij,bhnj->bhni", pose["rotation"], local) + pose["translation"].unsqueeze(-2)
