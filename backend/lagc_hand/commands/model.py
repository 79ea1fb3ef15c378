"""Hand model tools.

  lagc-hand model build  [--out assets]                regenerate the open hand model (deterministic)
  lagc-hand model check  [--mano-dir DIR | --model M]  load, validate and summarise a hand model
  lagc-hand model render [--model M] [--out DIR]       rest-pose and fist pictures (Blender Cycles CPU)

M is 'open' (default), 'mano' ($LAGC_HAND_MANO_DIR), a folder with
MANO_RIGHT.pkl / MANO_LEFT.pkl, or one .pkl/.npz file.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="regenerate assets/open_hand_{right,left}.npz")
    b.add_argument("--out", default=None, help="output folder (default: the project's assets/)")
    b.add_argument("--seed", type=int, default=0, help="seed of the pose samples behind the PCA basis")

    c = sub.add_parser("check", help="load and validate a hand model, print a summary")
    c.add_argument("--mano-dir", default=None, help="folder with MANO_RIGHT.pkl / MANO_LEFT.pkl")
    c.add_argument("--model", default="open", help="'open', 'mano', a folder or a file (default: open)")
    c.add_argument("--side", choices=("right", "left", "both"), default="both")

    r = sub.add_parser("render", help="render the model in rest pose and in a fist")
    r.add_argument("--model", default="open")
    r.add_argument("--side", choices=("right", "left"), default="right")
    r.add_argument("--out", default="docs/images", help="output folder (default: docs/images)")
    r.add_argument("--size", type=int, default=512, help="image side in pixels")
    r.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        return _build(args)
    if args.action == "check":
        return _check(args)
    return _render(args)


def _build(args) -> int:
    from lagc_hand.handmodel.loading import assets_dir
    from lagc_hand.handmodel.open_model import MODEL_ID, write_open_hand_assets

    t0 = time.perf_counter()
    paths = write_open_hand_assets(args.out or assets_dir(), seed=args.seed)
    for p in paths:
        print(f"wrote {p} ({p.stat().st_size / 1024:.0f} KiB)")
    print(f"{MODEL_ID} built in {time.perf_counter() - t0:.1f} s")
    return 0


def _check(args) -> int:
    import numpy as np
    import torch

    from lagc_hand.handmodel import load_hand_model_params, meshops
    from lagc_hand.handmodel.layer import HandModel

    model = args.mano_dir or args.model
    sides = ("right", "left") if args.side == "both" else (args.side,)
    for side in sides:
        p = load_hand_model_params(model, side)
        j = p.rest_joints()
        tips = p.v_template[p.tip_vertex_ids].astype(np.float64)
        rep = meshops.manifold_report(p.v_template, p.f)
        out = HandModel(p)(torch.zeros(1, 3), torch.zeros(1, 45))
        err = float(np.abs(out.vertices[0].numpy() - p.v_template).max())
        print(f"{side}: {p.extra.get('source')}")
        print(f"  model id {p.model_id}; {p.num_vertices} vertices, {len(p.f)} faces, {p.num_betas} shape coefficients, "
              f"pose correctives {'yes' if p.has_pose_correctives else 'no'}")
        print(f"  wrist to middle fingertip {np.linalg.norm(tips[2] - j[0]) * 100:.1f} cm; "
              f"wrist to middle MCP {np.linalg.norm(j[4] - j[0]) * 100:.1f} cm")
        print(f"  mesh: {'closed manifold' if rep.ok else 'open or non-manifold'} "
              f"({rep.boundary_edges} boundary edges, {rep.nonmanifold_edges} non-manifold edges)")
        print(f"  layer round trip at rest: max error {err:.2e} m")
    print("ok")
    return 0


def _render(args) -> int:
    from lagc_hand.handmodel import load_hand_model_params
    from lagc_hand.synth.pictures import render_rest_and_fist

    p = load_hand_model_params(args.model, args.side)
    for info in render_rest_and_fist(p, Path(args.out), size=args.size, samples=args.samples):
        print(f"wrote {info['path']} ({info['seconds']:.1f} s)")
    return 0
