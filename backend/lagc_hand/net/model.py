"""The LAGC-Hand network: image -> both hands' meshes, joints, cameras, heatmaps, masks."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .anchor import template_anchor
from .coarsen import GraphHierarchy, build_hierarchy
from .compact import CompactHeatmapModule
from .config import NetConfig
from .encoder import LinearAttentionEncoder
from .graph_module import LinearGraphModule
from .hamba import HambaHead
from .topology import MeshTopology, joint_matrix

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def project_weak(points: torch.Tensor, camera: torch.Tensor, image_size: int = 256) -> torch.Tensor:
    """Weak-perspective projection into crop pixels (IntagHand's form):
    ``uv = s * size * xy + (t * size/2 + size/2)``.
    points (..., N, 3) metres, camera (..., 3) = (s, tx, ty) -> (..., N, 2) pixels."""
    s = camera[..., :1].unsqueeze(-2)
    t = camera[..., 1:].unsqueeze(-2)
    half = image_size / 2
    return s * image_size * points[..., :2] + (t * half + half)


class LAGCHandNet(nn.Module):
    """image (B, 3, 256, 256) RGB in [0, 1] (normalised inside) -> dict:

    * ``vertices`` (B, 2, V, 3) metres, left hand first, both in the frame of
      the training targets (centred at the left hand's middle MCP, camera axes);
    * ``joints`` (B, 2, 21, 3) public order, regressed from the vertices;
    * ``camera`` (B, 2, 3) weak perspective (s, tx, ty) per hand;
    * ``joints2d`` / ``vertices2d`` (B, 2, N, 2) crop pixels (weak perspective);
    * ``coarse`` (B, 2, N_last, 3) finest graph level before upsampling;
    * ``coarse_levels`` (training mode, graph head with ``graph.submesh``):
      [(B, 2, N_t, 3)] every graph level coarse to fine, the last = ``coarse``;
    * ``heatmaps`` (B, 42, 64, 64), ``masks`` (B, 2, 64, 64) logits.
    """

    def __init__(self, cfg: NetConfig, topology: MeshTopology, hierarchy: GraphHierarchy | None = None):
        super().__init__()
        cfg.validate()
        topology.validate()
        self.cfg = cfg
        self.topology = topology
        if hierarchy is None:
            hierarchy = build_hierarchy(topology.faces, topology.template, cfg.graph.coarsen, cfg.graph.levels)
        self.hierarchy = hierarchy
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("joint_map", torch.from_numpy(joint_matrix(topology)), persistent=True)
        self.encoder = LinearAttentionEncoder(cfg.encoder)
        self.compact = CompactHeatmapModule(cfg.compact, self.encoder.out_channels)
        output = cfg.graph.output if cfg.head == "graph" else cfg.hamba.output
        anchor = template_anchor(topology, hierarchy.positions[-1]) if output == "posed_template" else None
        if cfg.head == "graph":
            levels = [template_anchor(topology, p) for p in hierarchy.positions[:-1]] if anchor is not None else None
            self.head = LinearGraphModule(cfg.graph, hierarchy, cfg.encoder.exp_channels, self.compact.pyramid_channels, anchor, levels)
        else:
            self.head = HambaHead(cfg.hamba, self.compact.pyramid_channels[-1], cfg.encoder.exp_channels, hierarchy.upsample, anchor)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (image - self.mean) / self.std
        feats = self.encoder(x)
        comp = self.compact(feats)
        if self.cfg.head == "graph":
            out = self.head(comp["global"], comp["pyramid"])
        else:
            out = self.head(comp["pyramid"][-1], comp["heatmaps"], comp["global"])
        verts = out["vertices"]
        joints = torch.einsum("hjv,bhvc->bhjc", self.joint_map, verts)
        size = self.cfg.image_size
        return {
            "vertices": verts,
            "joints": joints,
            "camera": out["camera"],
            "coarse": out["coarse"],
            "vertices2d": project_weak(verts, out["camera"], size),
            "joints2d": project_weak(joints, out["camera"], size),
            "heatmaps": comp["heatmaps"],
            "masks": comp["masks"],
        } | ({"coarse_levels": out["coarse_levels"]} if "coarse_levels" in out else {})


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def topology_arrays_equal(a: MeshTopology, b: MeshTopology) -> bool:
    return a.faces.shape == b.faces.shape and bool(np.array_equal(a.faces, b.faces)) and a.num_vertices == b.num_vertices


def build_model(cfg: NetConfig, topology: MeshTopology) -> LAGCHandNet:
    """A new (untrained) network for ``cfg`` on the mesh ``topology`` (its graph hierarchy built here)."""
    hier = build_hierarchy(topology.faces, topology.template, cfg.graph.coarsen, cfg.graph.levels)
    return LAGCHandNet(cfg, topology, hier)
