"""Evaluate a LAGC-Hand checkpoint with the IntagHand protocol.

Root = middle-finger MCP (public index 9) for prediction and ground truth
separately; each predicted hand rescaled by the ground-truth / predicted
wrist-to-middle-MCP length; MPJPE and MPVPE in mm for the left hand, the right
hand and their mean, printed as the paper's table (``--json``: as JSON).
--data is an InterHand2.6M folder (interacting-hand
frames of the split, see lagc_hand/net/data/interhand.py) or "synthetic"
(held-out synthetic samples from the checkpoint's hand model).
"""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint written by 'lagc-hand train'")
    p.add_argument("--data", required=True, help="InterHand2.6M root folder, or 'synthetic'")
    p.add_argument("--split", default="test", help="InterHand2.6M split (default test)")
    p.add_argument("--hand-model", default=None, help="hand model for the ground truth (default: the checkpoint's; a MANO folder for InterHand2.6M)")
    p.add_argument("--limit", type=int, help="evaluate only the first N frames / samples")
    p.add_argument("--synthetic-seed", type=int, default=7_000_001, help="seed of the synthetic evaluation set")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes reading the images")
    p.add_argument("--index-cache", help="InterHand2.6M: .npz file caching the split's frame index (built on first use)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of the table")
    p.add_argument("-o", "--output", help="also write the metrics as JSON here")


def run(args: argparse.Namespace) -> int:
    import os

    from lagc_hand.net.checkpoint import load_model
    from lagc_hand.net.training import evaluate, resolve_device

    dev = resolve_device(args.device)
    model, ckpt = load_model(args.checkpoint, dev)
    hand_model = args.hand_model or ckpt.get("train_config", {}).get("hand_model", "open")
    if args.data == "synthetic":
        from lagc_hand.net.data.synthetic import SyntheticTwoHands

        dataset = SyntheticTwoHands(args.limit or 200, args.synthetic_seed, hand_model, model.topology)
    else:
        from lagc_hand.net.data.interhand import InterHandDataset

        dataset = InterHandDataset(args.data, args.split, hand_model, model.topology, limit=args.limit,
                                   index_cache=args.index_cache, workers=args.workers)
    if dataset.topology.num_vertices != model.topology.num_vertices:
        from lagc_hand.errors import InputError

        raise InputError(
            f"the checkpoint's mesh has {model.topology.num_vertices} vertices but the hand model "
            f"{hand_model!r} has {dataset.topology.num_vertices}; pass the hand model it was trained with"
        )
    from lagc_hand.net.metrics import PROTOCOL, protocol_table

    metrics = evaluate(model, dataset, args.batch_size, dev, progress=True, workers=args.workers)
    title = "synthetic" if args.data == "synthetic" else f"InterHand2.6M {args.split}"
    metrics["protocol"] = PROTOCOL + ", mm"
    text = json.dumps(metrics, indent=2)
    print(text if args.json else protocol_table(metrics, title))
    if args.output:
        tmp = args.output + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text + "\n")
        os.replace(tmp, args.output)
    return 0
