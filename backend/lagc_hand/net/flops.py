"""FLOP counting with fvcore.

fvcore counts one fused multiply-add as one flop, so its "flops" are
multiply-accumulates (MACs); elementwise ops (activations, softmax, adds) are
not counted.  Papers quoting "GFLOPs" for such networks (MobileViT, IntagHand,
LAGC-Hand) use the same convention.
"""
from __future__ import annotations

import torch

from .model import LAGCHandNet, count_parameters


def count_flops(model: LAGCHandNet, image_size: int = 256) -> dict[str, float]:
    """fvcore counts for one image: ``total``, ``encoder``, ``compact``,
    ``head`` (the graph module or the Hamba head), ``other`` (the joint
    regression outside the modules), ``params`` (all), and
    ``params_{encoder,compact,head}``."""
    from fvcore.nn import FlopCountAnalysis

    model = model.eval()
    x = torch.rand(1, 3, image_size, image_size)
    with torch.no_grad():
        fa = FlopCountAnalysis(model, x)
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        by = fa.by_module()
        total = float(fa.total())
    out = {"total": total}
    for name in ("encoder", "compact", "head"):
        out[name] = float(by.get(name, 0))
        out[f"params_{name}"] = float(count_parameters(getattr(model, name)))
    out["other"] = total - out["encoder"] - out["compact"] - out["head"]  # joint regression
    out["params"] = float(count_parameters(model))
    return out
