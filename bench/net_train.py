"""A longer synthetic training run: held-out synthetic MPJPE/MPVPE (IntagHand
protocol) of the untrained and the trained network.

    python bench/net_train.py [--config configs/tiny_overfit.json] [--train N] [--val N]
                              [--steps N] [--batch B] [--lr LR] [--device auto] [--write]

--write appends a section to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
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
    from lagc_hand.net.testing import ensure_open_model
    from lagc_hand.net.training import CompactCache, build_model, evaluate, resolve_device, train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny_overfit.json"))
    ap.add_argument("--train", type=int, default=256)
    ap.add_argument("--val", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    ensure_open_model(tempfile.mkdtemp())
    cfg = load_train_config(args.config)
    cfg.synthetic_train, cfg.synthetic_val, cfg.batch_size, cfg.lr = args.train, args.val, args.batch, args.lr
    steps_per_epoch = (args.train + args.batch - 1) // args.batch
    cfg.epochs = max(1, (args.steps + steps_per_epoch - 1) // steps_per_epoch)
    cfg.max_steps = args.steps
    cfg.lr_decay_epoch = int(cfg.epochs * 0.75)
    cfg.edge_loss_epoch = cfg.epochs // 2
    cfg.out_dir = args.out_dir or tempfile.mkdtemp(prefix="lagc_train_")
    dev = resolve_device(args.device)
    train_set = SyntheticTwoHands(cfg.synthetic_train, cfg.synthetic_seed, cfg.hand_model)
    val_set = SyntheticTwoHands(cfg.synthetic_val, cfg.synthetic_seed + 1_000_003, cfg.hand_model, train_set.topology)
    torch.manual_seed(cfg.seed)
    val_cache = CompactCache(val_set)
    before = evaluate(build_model(cfg.net, train_set.topology).to(dev), val_cache, 16, dev)
    t = time.perf_counter()
    result = train(cfg, device=args.device, progress=True, datasets=(train_set, val_set))
    wall = time.perf_counter() - t
    h = result["history"]
    report = {
        "device": result["device"], "train_samples": args.train, "val_samples": args.val, "steps": args.steps,
        "batch": args.batch, "wall_seconds": round(wall, 1), "train_samples_per_second": round(result["samples_per_second"], 2),
        "loss_first_epoch": round(h[0]["total"], 3), "loss_last_epoch": round(h[-1]["total"], 3),
        "val_untrained": {k: round(v, 2) for k, v in before.items()},
        "val_trained": {k: round(v, 2) for k, v in result["val"].items()},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.write:
        head = (f"\n## LAGC-Hand synthetic training run ({datetime.date.today()}, {platform.node()}, "
                f"config {Path(args.config).name})\n\nHeld-out synthetic samples (other seed), IntagHand protocol, mm.\n\n")
        with open(ROOT / "bench" / "RESULTS.md", "a") as fh:
            fh.write(head + "```json\n" + text + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
