"""Can a head learn two samples?  Trains configs/tiny_overfit.json's network on
2 synthetic samples (batch 2) for STEPS steps, per head / output form /
learning rate, and prints eval-mode MPJPE/MPVPE (IntagHand protocol, mm) on
those same samples before and after (what
tests/test_net_train.py::test_*eval_mode_error_on_the_training_samples_falls check).

    python bench/net_overfit.py [--head graph,hamba] [--output posed_template,direct]
                                [--lr 5e-3,1e-3] [--steps 100]

1 CPU thread; about 1.5 min per combination on a shared 2-core VM.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))


def main(argv=None) -> int:
    import torch

    from lagc_hand.net.config import load_train_config
    from lagc_hand.net.data.synthetic import SyntheticTwoHands
    from lagc_hand.net.checkpoint import load_model
    from lagc_hand.net.training import build_model, evaluate, seed_everything, train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--head", default="graph,hamba")
    ap.add_argument("--output", default="posed_template,direct")
    ap.add_argument("--lr", default="5e-3,1e-3")
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print("| head | output | Adam lr | steps | MPJPE before -> after | MPVPE before -> after | loss first -> last | s |")
    print("|---|---|---|---|---|---|---|---|")
    for head in args.head.split(","):
        for output in args.output.split(","):
            for lr in (float(x) for x in args.lr.split(",")):
                cfg = load_train_config(ROOT / "configs" / "tiny_overfit.json")
                cfg.net.head = head
                cfg.net.graph.output = cfg.net.hamba.output = output
                cfg.synthetic_train, cfg.synthetic_val, cfg.batch_size, cfg.epochs, cfg.lr = 2, 0, 2, args.steps, lr
                cfg.out_dir = tempfile.mkdtemp(prefix="lagc_overfit_")
                t0 = time.perf_counter()
                samples = SyntheticTwoHands(2, cfg.synthetic_seed, cfg.hand_model)
                result = train(cfg, progress=False, log=lambda s: None, datasets=(samples, []))
                seed_everything(cfg.seed)  # the initial weights train() drew
                before = evaluate(build_model(cfg.net, samples.topology), samples, 2)
                after = evaluate(load_model(result["checkpoint"])[0], samples, 2)
                h = result["history"]
                print(f"| {head} | {output} | {lr:g} | {args.steps} | {before['mpjpe']:.1f} -> **{after['mpjpe']:.1f}** | "
                      f"{before['mpvpe']:.1f} -> {after['mpvpe']:.1f} | {h[0]['total']:.1f} -> {h[-1]['total']:.1f} | "
                      f"{time.perf_counter() - t0:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
