"""Token mixers: separable (linear) self-attention and standard multi-head
self-attention, with the same call signature so a config switch picks one.

Both take ``x (B, N, D)`` tokens and return ``(B, N, D)``.
"""
from __future__ import annotations

import torch
from torch import nn


class SeparableSelfAttention(nn.Module):
    """MobileViTv2 separable self-attention, cost O(N*D) instead of O(N^2*D).

    ``c_s = softmax(x W_I)`` over the N tokens (one score per token),
    ``c_v = sum_i c_s(i) (x W_K)_i`` (one context vector), and
    ``y = (ReLU(x W_V) * c_v) W_O`` with ``c_v`` broadcast over tokens.
    """

    def __init__(self, dim: int, dropout: float = 0.0):
        super().__init__()
        self.dim = dim
        # One projection for I (1 channel), K (dim) and V (dim), as one matmul.
        self.qkv = nn.Linear(dim, 1 + 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        i, k, v = torch.split(self.qkv(x), [1, self.dim, self.dim], dim=-1)
        scores = self.drop(torch.softmax(i, dim=-2))  # (B, N, 1)
        context = (k * scores).sum(dim=-2, keepdim=True)  # (B, 1, D)
        return self.out(torch.relu(v) * context)


class MultiHeadSelfAttention(nn.Module):
    """Standard scaled dot-product self-attention with ``heads`` heads.

    Written with explicit matmuls (not ``scaled_dot_product_attention``) so
    fvcore counts its cost and ONNX export stays at a low opset."""

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        qkv = self.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, h, N, d/h)
        attn = self.drop(torch.softmax(torch.matmul(q * self.scale, k.transpose(-1, -2)), dim=-1))
        y = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, d)
        return self.out(y)


def make_attention(kind: str, dim: int, heads: int, dropout: float = 0.0) -> nn.Module:
    """``kind``: ``"separable"`` or ``"mhsa"``."""
    if kind == "separable":
        return SeparableSelfAttention(dim, dropout)
    if kind == "mhsa":
        return MultiHeadSelfAttention(dim, heads, dropout)
    raise ValueError(f"unknown attention kind {kind!r}")


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer: ``x + attn(LN x)``, then ``x + FFN(LN x)``
    with a SiLU feed-forward of width ``ffn``.  x: (B, N, D)."""

    def __init__(self, dim: int, ffn: int, kind: str, heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = make_attention(kind, dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.SiLU(), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.ffn(self.norm2(x)))
