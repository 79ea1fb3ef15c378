"""Export a LAGC-Hand checkpoint to ONNX.

The graph takes ``image`` (B, 3, 256, 256) float32 RGB in [0, 1] (dynamic
batch) and returns ``vertices`` (B, 2, V, 3), ``joints`` (B, 2, 21, 3),
``camera`` (B, 2, 3), ``heatmaps`` (B, 42, 64, 64) and ``masks`` (B, 2, 64, 64);
hand 0 is the left hand.  The file is written to a temp name and renamed.
"""
from __future__ import annotations

import argparse

OUTPUT_NAMES = ("vertices", "joints", "camera", "heatmaps", "masks")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True)
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")


def export(checkpoint: str, output: str, opset: int = 17) -> str:
    import os

    import torch

    from lagc_hand.net.checkpoint import load_model

    model, _ = load_model(checkpoint, "cpu")

    class _Wrapper(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, image):
            out = self.net(image)
            return tuple(out[k] for k in OUTPUT_NAMES)

    dummy = torch.rand(1, 3, model.cfg.image_size, model.cfg.image_size)
    tmp = output + ".tmp"
    torch.onnx.export(
        _Wrapper(model).eval(), (dummy,), tmp, input_names=["image"], output_names=list(OUTPUT_NAMES),
        dynamic_axes={"image": {0: "batch"}, **{k: {0: "batch"} for k in OUTPUT_NAMES}}, opset_version=opset,
        dynamo=False,
    )
    os.replace(tmp, output)
    return output


def parity(checkpoint: str, onnx_path: str, batch: int = 2, seed: int = 0) -> float:
    """Max abs difference between torch and onnxruntime outputs on random input."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from lagc_hand.net.checkpoint import load_model

    model, _ = load_model(checkpoint, "cpu")
    x = torch.from_numpy(np.random.default_rng(seed).uniform(0, 1, (batch, 3, 256, 256)).astype(np.float32))
    with torch.no_grad():
        ref = model(x)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    outs = sess.run(list(OUTPUT_NAMES), {"image": x.numpy()})
    return float(max(np.abs(o - ref[k].numpy()).max() for k, o in zip(OUTPUT_NAMES, outs)))


def run(args: argparse.Namespace) -> int:
    out = export(args.checkpoint, args.output, args.opset)
    print(f"wrote {out}")
    if not args.no_check:
        print(f"onnxruntime parity: max abs diff {parity(args.checkpoint, out):.2e}")
    return 0
