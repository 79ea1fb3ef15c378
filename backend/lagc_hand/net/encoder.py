"""Linear Attention Encoder: a MobileViTv3-XXS-style backbone.

Layout at a 256x256 input (channels per the XXS config)::

    stem   conv3x3 s2            16 @ 128x128
    layer1 MV2                   16 @ 128x128
    layer2 MV2 s2, MV2 x2        24 @ 64x64
    layer3 MV2 s2 + MViTv3 block 64 @ 32x32   (d=64,  FFN 128, depth 2)
    layer4 MV2 s2 + MViTv3 block 80 @ 16x16   (d=80,  FFN 160, depth 4)
    layer5 MV2 s2 + MViTv3 block 128 @ 8x8    (d=96,  FFN 192, depth 3)
    exp    conv1x1               512 @ 8x8

The MobileViTv3 block (paper eqs. 1-3): local depth-wise 3x3 conv + 1x1 conv
(``CNN_depthwise``), unfold into 2x2 patches, a global transformer over the
patches (``Trans``), fold back, fuse the local and global features by
concatenation and a 1x1 conv, and add the block input (residual).
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import TransformerLayer
from .config import EncoderConfig


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depth-wise (stride s), 1x1 project;
    residual when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.block = nn.Sequential(
            conv_bn(cin, hidden, 1),
            conv_bn(hidden, hidden, 3, stride, groups=hidden),
            conv_bn(hidden, cout, 1, act=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class MobileViTv3Block(nn.Module):
    """x (B, C, H, W) -> (B, C, H, W); H and W divisible by ``patch``."""

    def __init__(self, channels: int, dim: int, ffn: int, depth: int, patch: int, attention: str, heads: int, dropout: float):
        super().__init__()
        self.patch = patch
        # eq. 3 inner part: local depth-wise conv then 1x1 to the transformer width.
        self.local = nn.Sequential(
            conv_bn(channels, channels, 3, groups=channels),
            nn.Conv2d(channels, dim, 1, bias=False),
        )
        self.transformer = nn.Sequential(*[TransformerLayer(dim, ffn, attention, heads, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.proj = conv_bn(dim, channels, 1)
        # eq. 2: concat(local, global) -> 1x1 conv.
        self.fusion = conv_bn(dim + channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        p = self.patch
        local = self.local(x)  # (B, d, H, W)
        d = local.shape[1]
        nh, nw = h // p, w // p
        # unfold: every patch-pixel position (p*p of them) sees the tokens of all
        # patches at that position -> (B*p*p, nh*nw, d)
        t = local.reshape(b, d, nh, p, nw, p).permute(0, 3, 5, 2, 4, 1).reshape(b * p * p, nh * nw, d)
        t = self.norm(self.transformer(t))
        g = t.reshape(b, p, p, nh, nw, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, h, w)
        g = self.proj(g)
        # eq. 1: fused features + the block input.
        return x + self.fusion(torch.cat([local, g], dim=1))


class LinearAttentionEncoder(nn.Module):
    """image (B, 3, 256, 256), ImageNet-normalised -> dict of feature maps:
    ``c2`` (B, 24, 64, 64), ``c3`` (B, 64, 32, 32), ``c4`` (B, 80, 16, 16),
    ``c5`` (B, 128, 8, 8), ``exp`` (B, 512, 8, 8)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        c = cfg.channels
        e = cfg.mv2_expansion
        self.stem = conv_bn(3, c[0], 3, 2)
        self.layer1 = InvertedResidual(c[0], c[1], 1, e)
        self.layer2 = nn.Sequential(
            InvertedResidual(c[1], c[2], 2, e), InvertedResidual(c[2], c[2], 1, e), InvertedResidual(c[2], c[2], 1, e)
        )

        def vit_stage(cin: int, cout: int, i: int) -> nn.Sequential:
            return nn.Sequential(
                InvertedResidual(cin, cout, 2, e),
                MobileViTv3Block(
                    cout, cfg.transformer_dims[i], cfg.ffn_dims[i], cfg.depths[i], cfg.patch, cfg.attention, cfg.heads, cfg.dropout
                ),
            )

        self.layer3 = vit_stage(c[2], c[3], 0)
        self.layer4 = vit_stage(c[3], c[4], 1)
        self.layer5 = vit_stage(c[4], c[5], 2)
        self.exp = conv_bn(c[5], cfg.exp_channels, 1)
        self.out_channels = {"c2": c[2], "c3": c[3], "c4": c[4], "c5": c[5], "exp": cfg.exp_channels}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.layer1(self.stem(x))
        c2 = self.layer2(x)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        c5 = self.layer5(c4)
        return {"c2": c2, "c3": c3, "c4": c4, "c5": c5, "exp": self.exp(c5)}
