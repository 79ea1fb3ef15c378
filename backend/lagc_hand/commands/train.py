"""Train the LAGC-Hand network, or the two-hand refiner, from a config file (.yaml/.yml/.json).

A config with ``mode: refiner`` (``configs/refiner.yaml``) trains the
two-hand graph refiner (:mod:`lagc_hand.net.refiner.training`) on synthetic
data made on the fly on CPU and writes ``OUT_DIR/refiner.pt`` and
``OUT_DIR/train_log.jsonl``; ``--steps`` overrides its step budget.

Any other config mirrors lagc_hand.net.config.TrainConfig (see configs/ for
examples): network sizes, data ("synthetic" or an InterHand2.6M folder), Adam
schedule (lr 1e-4, x0.1 at half the epochs), batch size, seed, output folder.
Writes OUT_DIR/last.pt after every epoch (atomically); --resume continues
from a checkpoint (model, optimiser, scheduler, epoch, RNG state).  Mixed
precision per "amp" (true: bf16 on CUDA where supported, else fp16).  Several
GPUs: ``torchrun --nproc_per_node N -m lagc_hand.cli train --config C``
(DDP; batch_size is per GPU; rank 0 writes checkpoints and prints).
"""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="training config (.yaml, .yml or .json)")
    p.add_argument("--resume", help="checkpoint to continue from (e.g. OUT_DIR/last.pt)")
    p.add_argument("--out-dir", help="override the config's out_dir")
    p.add_argument("--epochs", type=int, help="override the config's epochs")
    p.add_argument("--steps", type=int, help="refiner mode: override the config's step budget")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--workers", type=int, help="override the config's DataLoader worker processes")


def _mode(path) -> str:
    from lagc_hand.net.config import read_config_file

    return str(read_config_file(path).get("mode", "network"))


def run(args: argparse.Namespace) -> int:
    if _mode(args.config) == "refiner":
        return _run_refiner(args)
    from lagc_hand.net.config import load_train_config
    from lagc_hand.net.training import train

    cfg = load_train_config(args.config)
    if args.out_dir:
        cfg.out_dir = args.out_dir
    if args.epochs:
        cfg.epochs = args.epochs
    if args.workers is not None:
        cfg.workers = args.workers
    result = train(cfg, resume=args.resume, device=args.device, progress=not args.no_progress)
    last = result["history"][-1] if result["history"] else {}
    if result["rank"] != 0:
        return 0  # torchrun: rank 0 reports
    print(json.dumps({"checkpoint": result["checkpoint"], "final_loss": last.get("total"), "val": result["val"],
                      "samples_per_second": round(result["samples_per_second"], 2), "device": result["device"]}, indent=2))
    return 0


def _run_refiner(args: argparse.Namespace) -> int:
    from lagc_hand.errors import InputError
    from lagc_hand.net.config import read_config_file
    from lagc_hand.net.refiner.training import RefinerTrainConfig, train_refiner
    from lagc_hand.synth.refiner_pairs import OnTheFlyData

    if args.resume or args.epochs:
        raise InputError("the refiner trains in steps from scratch: use --steps, not --resume/--epochs")
    cfg = RefinerTrainConfig.from_dict(read_config_file(args.config))
    log = (lambda s: None) if args.no_progress else print
    result = train_refiner(cfg, OnTheFlyData, out_dir=args.out_dir, steps=args.steps, log=log)
    last = result["history"][-1] if result["history"] else {}
    print(json.dumps({"checkpoint": result["checkpoint"], "final_loss": last.get("total"), "val": result["val"],
                      "seconds": round(result["seconds"], 1)}, indent=2))
    return 0
