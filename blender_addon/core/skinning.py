"""Skin-weight limits for game engines (numpy only).

glTF viewers, Unity and Unreal skin with at most 4 joint influences per
vertex; the hand model's smooth weights touch up to 16.  Keeping each
vertex's 4 largest weights and renormalising them to sum 1 is what engines do
on import anyway; doing it in the scene makes the exported file say exactly
what will be rendered, and lets the error be measured (``bench/skin_influences.py``).
"""
from __future__ import annotations

import numpy as np

#: The influence limit of glTF's JOINTS_0/WEIGHTS_0 and of common game engines.
ENGINE_INFLUENCES = 4


def limit_influences(weights: np.ndarray, max_influences: int = ENGINE_INFLUENCES) -> np.ndarray:
    """(V, J) skin weights -> (V, J) with at most ``max_influences`` non-zero
    weights per vertex (its largest), renormalised to the vertex's original sum
    (1 for normalised weights).  Vertices without weight stay without weight.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"skin weights must be (V, J), got shape {w.shape}")
    if max_influences < 1:
        raise ValueError(f"max_influences must be 1 or more, got {max_influences}")
    if w.shape[1] <= max_influences:
        return w.copy()
    # The (J - k) smallest of each row are dropped; ties are broken by joint order.
    drop = np.argsort(w, axis=1, kind="stable")[:, : w.shape[1] - max_influences]
    out = w.copy()
    np.put_along_axis(out, drop, 0.0, axis=1)
    total, kept = w.sum(axis=1, keepdims=True), out.sum(axis=1, keepdims=True)
    scale = np.divide(total, kept, out=np.zeros_like(total), where=kept > 0)
    return out * scale


def influence_counts(weights: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(V,) number of weights above ``eps`` per vertex."""
    return (np.asarray(weights) > eps).sum(axis=1)
