"""Why held-out MPJPE can rise while the training loss falls: a short training
run that evaluates, every STEPS/3 steps, held-out samples in eval mode and in
train mode (batch BatchNorm statistics) and the training samples in eval mode,
with the predicted wrist-to-middle-MCP length (mm, training frame) and the
root-relative error *without* the protocol's bone rescale.

    python bench/net_diagnose.py [--head graph|hamba] [--output posed_template|direct]
                                 [--train 16] [--val 16] [--steps 60] [--lr 5e-3] [--batch 8]

Uses configs/tiny_overfit.json's network (with ``--head hamba``: its encoder and
compact module and the default Hamba head), 1 CPU thread.  --output sets the
chosen head's output form.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))


def main(argv=None) -> int:
    import numpy as np
    import torch

    from lagc_hand.net.config import load_train_config
    from lagc_hand.net.data.synthetic import SyntheticTwoHands
    from lagc_hand.net.losses import LAGCLoss
    from lagc_hand.net.metrics import IntagHandMeter
    from lagc_hand.net.training import CompactCache, batches, build_model, seed_everything
    from lagc_hand_blender.core.skeleton import PUBLIC_MIDDLE_MCP, PUBLIC_WRIST

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--head", default="graph", choices=("graph", "hamba"))
    ap.add_argument("--output", default="posed_template", choices=("posed_template", "direct"))
    ap.add_argument("--train", type=int, default=16)
    ap.add_argument("--val", type=int, default=16)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0, help="initial weights")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_train_config(ROOT / "configs" / "tiny_overfit.json")
    cfg.net.head = args.head
    if args.head == "graph":
        cfg.net.graph.output = args.output
    elif args.output != "direct" and not hasattr(cfg.net.hamba, "output"):
        raise SystemExit("this Hamba head only regresses raw coordinates: use --output direct")
    else:
        cfg.net.hamba.output = args.output
    t0 = time.perf_counter()
    tr = SyntheticTwoHands(args.train, 0, "open")
    trc = CompactCache(tr)
    vac = CompactCache(SyntheticTwoHands(args.val, 1_000_003, "open", tr.topology))
    seed_everything(args.seed)
    model = build_model(cfg.net, tr.topology)
    loss_fn = LAGCLoss(tr.topology.faces)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    @torch.no_grad()
    def probe(ds, train_mode: bool) -> dict:
        model.train(train_mode)
        meter, bones, noscale = IntagHandMeter(), [], []
        for b in batches(ds, args.batch, False):
            out = model(b["image"])
            s = b["scale"].double().numpy()[:, None, None, None]
            pj, gj = out["joints"].double().numpy(), b["joints3d"].double().numpy()
            meter.update(pj, gj / s, out["vertices"].double().numpy(), b["verts3d"].double().numpy() / s)
            bones.append(np.linalg.norm(pj[:, :, PUBLIC_MIDDLE_MCP] - pj[:, :, PUBLIC_WRIST], axis=-1))
            rel = (pj - pj[:, :, PUBLIC_MIDDLE_MCP : PUBLIC_MIDDLE_MCP + 1]) - (gj - gj[:, :, PUBLIC_MIDDLE_MCP : PUBLIC_MIDDLE_MCP + 1])
            noscale.append(np.linalg.norm(rel, axis=-1).mean(-1))
        model.train()
        r = meter.summary()
        return {"mpjpe": round(r["mpjpe"], 1), "left": round(r["mpjpe_left"], 1), "right": round(r["mpjpe_right"], 1),
                "pred_bone_mm": round(float(np.median(np.concatenate(bones)) * 1000), 1),
                "rootrel_no_rescale_mm": round(float(np.concatenate(noscale).mean() * 1000), 1)}

    def report(step: int) -> None:
        print(f"step {step:4d} held-out eval-mode  {probe(vac, False)}")
        print(f"step {step:4d} held-out train-mode {probe(vac, True)}")
        print(f"step {step:4d} train    eval-mode  {probe(trc, False)}", flush=True)

    report(0)
    rng = np.random.default_rng(0)
    step = 0
    while step < args.steps:
        for b in batches(trc, args.batch, True, rng):
            total, _ = loss_fn(model(b["image"]), b)
            opt.zero_grad()
            total.backward()
            opt.step()
            step += 1
            if step % max(args.steps // 3, 1) == 0:
                print(f"step {step:4d} loss {float(total.detach()):.1f}")
                report(step)
            if step >= args.steps:
                break
    print(f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
