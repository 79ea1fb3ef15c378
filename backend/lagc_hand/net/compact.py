"""Compact Single-Hand Heatmap module (paper eq. 4: ``F_maps, G = Hms_single[Out]``).

A top-down 3x3-conv decoder over the encoder's 8/16/32/64 px maps.  Outputs:

* ``heatmaps`` (B, 42, 64, 64): 21 joint heatmaps per hand, left hand first,
  public keypoint order;
* ``masks`` (B, 2, 64, 64): left and right hand silhouettes (logits);
* ``global`` (B, C_exp): the global feature vector F (average of the encoder's
  1x1-expanded top map);
* ``pyramid``: [(B, d0, 8, 8), (B, d1, 16, 16), (B, d2, 32, 32)], the feature
  maps the graph levels attend to (coarse to fine).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import CompactConfig


def conv3(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CompactHeatmapModule(nn.Module):
    def __init__(self, cfg: CompactConfig, enc_channels: dict[str, int]):
        super().__init__()
        d = cfg.dims
        self.top = conv3(enc_channels["c5"], d[0])
        self.up16 = conv3(d[0] + enc_channels["c4"], d[1])
        self.up32 = conv3(d[1] + enc_channels["c3"], d[2])
        self.up64 = conv3(d[2] + enc_channels["c2"], d[3])
        self.num_joints = cfg.num_joints
        # 2 x 21 heatmaps + 2 masks from the 64 px map in one 1x1 conv.
        self.head = nn.Conv2d(d[3], 2 * cfg.num_joints + 2, 1)
        n = 2 * cfg.num_joints
        with torch.no_grad():
            # Heatmap channels start at ~0 (the all-zero answer, MSE x100 = 0.31
            # for sigma-2 Gaussians at 64 px).  PyTorch's default init on these
            # ReLU features gives outputs of rms ~0.5 (heatmap term ~22, 70x
            # that score): its gradient then dominated the shared 64 px decoder
            # for hundreds of steps while it only shrank the output, and neither
            # heatmaps nor masks were learnt (bench/RESULTS.md, "compact module").
            nn.init.normal_(self.head.weight[:n], std=1e-3)
            self.head.bias[:n] = 0.0
            # prior: hands cover a small part of the crop (sigmoid(-2) ~ 0.12),
            # so the x500 mask loss does not start out dominating everything
            self.head.bias[n:] = -2.0
        self.pyramid_channels = (d[0], d[1], d[2])

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        g8 = self.top(feats["c5"])
        g16 = self.up16(torch.cat([F.interpolate(g8, scale_factor=2.0, mode="nearest"), feats["c4"]], 1))
        g32 = self.up32(torch.cat([F.interpolate(g16, scale_factor=2.0, mode="nearest"), feats["c3"]], 1))
        g64 = self.up64(torch.cat([F.interpolate(g32, scale_factor=2.0, mode="nearest"), feats["c2"]], 1))
        out = self.head(g64)
        n = 2 * self.num_joints
        return {
            "heatmaps": out[:, :n],
            "masks": out[:, n:],
            "global": feats["exp"].mean(dim=(2, 3)),
            "pyramid": [g8, g16, g32],
        }
