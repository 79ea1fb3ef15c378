"""A longer synthetic training run with held-out synthetic MPJPE/MPVPE
(IntagHand protocol) along the way.

    python bench/net_train.py [--config configs/tiny_overfit.json] [--train N] [--eval N]
                              [--epochs E] [--batch B] [--lr LR] [--threads T]
                              [--device auto] [--out-dir DIR] [--write]

The held-out set is the one ``lagc-hand eval --data synthetic`` draws (seed
7000001, never trained on: training uses seed ``synthetic_seed``).  It is
evaluated in-process after every epoch with the same function that command
runs; the checkpoints at step 0, 1/4, 1/2, 3/4 and the end are kept in
OUT_DIR and re-evaluated at the end through the ``lagc-hand eval`` CLI itself
(the numbers must agree).  Each epoch also logs the compact module's heatmap and
mask loss terms (held-out, eval mode; and the training epoch's mean) next to the
all-zero / all-background answer's.  --write appends a section to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

EVAL_SEED = 7_000_001  # lagc-hand eval's default --synthetic-seed


def compact_terms(model, dataset, loss_fn, dev, batch_size: int = 32) -> dict[str, float]:
    """Mean (over batches of ``batch_size``) weighted heatmap and mask loss terms
    of ``model`` in eval mode on ``dataset``; the same weights as training."""
    import torch

    from lagc_hand.net.training import batches

    model.eval()
    sums, n = {"heatmap": 0.0, "mask": 0.0}, 0
    with torch.no_grad():
        for b in batches(dataset, batch_size, False):
            b = {k: v.to(dev) for k, v in b.items()}
            _, t = loss_fn(model(b["image"]), b)
            sums = {k: sums[k] + t[k] for k in sums}
            n += 1
    return {k: v / max(n, 1) for k, v in sums.items()}


def compact_baselines(dataset, loss_fn, dev, batch_size: int = 32) -> dict[str, float]:
    """The same terms (batch means, as :func:`compact_terms`) for answers that
    ignore the image: ``heatmap`` all-zero maps, ``mask`` all background
    (sigmoid -> 0), ``heatmap_prior`` the set's per-pixel mean heatmap (the best
    image-independent answer under MSE).  Under smooth-L1 the best
    image-independent mask is the per-pixel median, i.e. all background unless
    some pixel is foreground in more than half the samples: ``mask_fg_max`` is
    the largest per-pixel foreground frequency.  A compact module that learnt
    nothing from the image sits at ``heatmap_prior`` and ``mask``."""
    import torch
    import torch.nn.functional as F

    from lagc_hand.net.training import batches

    all_b = list(batches(dataset, batch_size, False))
    mean_hm = torch.cat([b["heatmaps"].double() for b in all_b]).mean(0).float()
    fg = torch.cat([b["masks"].double() for b in all_b]).mean(0)
    sums, n = {"heatmap": 0.0, "mask": 0.0, "heatmap_prior": 0.0}, 0
    for b in all_b:
        hm, mk = b["heatmaps"].float(), b["masks"].float()
        sums["heatmap"] += float(loss_fn.w.heatmap * F.mse_loss(torch.zeros_like(hm), hm))
        sums["heatmap_prior"] += float(loss_fn.w.heatmap * F.mse_loss(mean_hm.expand_as(hm), hm))
        sums["mask"] += float(loss_fn.w.mask * F.smooth_l1_loss(torch.zeros_like(mk), mk, beta=0.05))
        n += 1
    return {k: v / max(n, 1) for k, v in sums.items()} | {"mask_fg_max": float(fg.max())}


def _parse_args(argv) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny_overfit.json"))
    ap.add_argument("--train", type=int, default=1000, help="training samples")
    ap.add_argument("--eval", type=int, default=200, help="held-out samples")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: leave the other core to others)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--write", action="store_true")
    return ap.parse_args(argv)


def _train_config(args: argparse.Namespace):
    """The training config of ``args.config`` with the run's sizes and schedule
    (LR decay at 3/4 of the epochs, edge loss from the half, a checkpoint per epoch)."""
    from lagc_hand.net.config import load_train_config

    cfg = load_train_config(args.config)
    cfg.synthetic_train, cfg.synthetic_val, cfg.batch_size, cfg.lr, cfg.epochs = args.train, 0, args.batch, args.lr, args.epochs
    cfg.lr_decay_epoch = max(1, int(round(args.epochs * 0.75)))
    cfg.edge_loss_epoch = args.epochs // 2
    cfg.checkpoint_every = 1
    return cfg


class _Recorder:
    """The training curve: :meth:`record` (the ``on_epoch`` callback) evaluates a
    model on the held-out set, appends the row to ``curve`` and prints it, and
    keeps the checkpoints of the ``keep`` epochs in ``out``."""

    def __init__(self, held, loss_fn, dev, out: Path, keep: set, t0: float):
        self.held, self.loss_fn, self.dev, self.out, self.keep, self.t0 = held, loss_fn, dev, out, keep, t0
        self.curve: list[dict] = []

    def record(self, epoch: int, step: int, model, path: Path | None) -> None:
        """One curve row for ``model`` after ``epoch`` (``path``: its checkpoint, None at step 0)."""
        import torch

        from lagc_hand.net.training import evaluate

        m = evaluate(model, self.held, 32, self.dev)
        row = {"epoch": epoch, "step": step, "minutes": round((time.perf_counter() - self.t0) / 60, 1)}
        row |= {k: round(v, 1) for k, v in m.items() if k != "frames"}
        # whether the compact module learns: its loss terms against the all-zero /
        # all-background answer, on the held-out set (eval mode) and as the epoch's
        # training mean (train mode, from the checkpoint's history)
        c = compact_terms(model, self.held, self.loss_fn, self.dev)
        row |= {"heatmap_held": round(c["heatmap"], 4), "mask_held": round(c["mask"], 2)}
        if path is not None:
            h = torch.load(path, map_location="cpu", weights_only=False)["history"][-1]
            row |= {"heatmap_train": round(h["heatmap"], 4), "mask_train": round(h["mask"], 2),
                    "vert3d_train": round(h["vert3d"], 3), "total_train": round(h["total"], 2)}
        self.curve.append(row)
        print(json.dumps(row), flush=True)
        if epoch in self.keep and path is not None:
            shutil.copyfile(path, self.out / f"epoch_{epoch:03d}.pt")


def _cli_eval(out: Path, n_eval: int, dev) -> dict[int, dict[str, float]]:
    """Every kept checkpoint in ``out`` through ``lagc-hand eval``: epoch -> MPJPE / MPVPE (mm)."""
    from lagc_hand.cli import main as cli_main

    cli = {}
    for ck in sorted(out.glob("epoch_*.pt")):
        js = out / (ck.stem + ".json")
        cli_main(["eval", "--checkpoint", str(ck), "--data", "synthetic", "--limit", str(n_eval),
                  "--synthetic-seed", str(EVAL_SEED), "--batch-size", "32", "--device", str(dev), "-o", str(js)])
        m = json.loads(js.read_text())
        cli[int(ck.stem.split("_")[1])] = {k: round(m[k], 1) for k in ("mpjpe_left", "mpjpe_right", "mpjpe", "mpvpe_left", "mpvpe_right", "mpvpe")}
    return cli


def _results_section(args: argparse.Namespace, argv, report: dict, base: dict, curve: list[dict], cli: dict) -> list[str]:
    """The bench/RESULTS.md section of the run (markdown lines)."""
    lines = [f"\n## LAGC-Hand synthetic training run ({datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()})\n",
             f"Command: `nice -n 10 .venv/bin/python bench/net_train.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n",
             "```json\n" + json.dumps(report) + "\n```\n",
             "Held-out synthetic samples (seed 7000001, the `lagc-hand eval --data synthetic` set), IntagHand protocol, mm:\n",
             f"Heatmap / mask terms: held-out eval mode, and training-epoch mean; on the held-out set all-zero heatmaps score "
             f"{base['heatmap']:.4f}, the per-pixel mean heatmap {base['heatmap_prior']:.4f}, all-background masks "
             f"{base['mask']:.2f} (no pixel is foreground in more than {100 * base['mask_fg_max']:.0f} % of the samples).\n",
             "| epoch | step | min | MPJPE L / R / mean | MPVPE L / R / mean | heatmap held / train | mask held / train |",
             "|---|---|---|---|---|---|---|"]
    for r in curve:
        lines.append(f"| {r['epoch']} | {r['step']} | {r['minutes']} | {r['mpjpe_left']} / {r['mpjpe_right']} / **{r['mpjpe']}** | "
                     f"{r['mpvpe_left']} / {r['mpvpe_right']} / {r['mpvpe']} | {r['heatmap_held']} / {r.get('heatmap_train', '-')} | "
                     f"{r['mask_held']} / {r.get('mask_train', '-')} |")
    lines += ["", "The same checkpoints through `lagc-hand eval --checkpoint epoch_NNN.pt --data synthetic --limit "
              f"{args.eval}`:", "", "| epoch | MPJPE L / R / mean | MPVPE L / R / mean |", "|---|---|---|"]
    for e, m in sorted(cli.items()):
        lines.append(f"| {e} | {m['mpjpe_left']} / {m['mpjpe_right']} / **{m['mpjpe']}** | {m['mpvpe_left']} / {m['mpvpe_right']} / {m['mpvpe']} |")
    return lines


def main(argv=None) -> int:
    import torch

    args = _parse_args(argv)
    torch.set_num_threads(args.threads)

    from lagc_hand.net.data.synthetic import SyntheticTwoHands
    from lagc_hand.net.losses import LAGCLoss
    from lagc_hand.net.checkpoint import checkpoint_payload, save_checkpoint
    from lagc_hand.net.training import CompactCache, build_model, resolve_device, seed_everything, train

    cfg = _train_config(args)
    out = Path(args.out_dir or tempfile.mkdtemp(prefix="lagc_train_"))
    cfg.out_dir = str(out)
    dev = resolve_device(args.device)
    t0 = time.perf_counter()
    train_set = SyntheticTwoHands(cfg.synthetic_train, cfg.synthetic_seed, cfg.hand_model)
    held = CompactCache(SyntheticTwoHands(args.eval, EVAL_SEED, cfg.hand_model, train_set.topology))
    print(f"held-out set rendered in {time.perf_counter() - t0:.0f} s", flush=True)
    keep = {0, round(args.epochs / 4), round(args.epochs / 2), round(3 * args.epochs / 4), args.epochs}
    loss_fn = LAGCLoss(train_set.topology.faces, cfg.net.image_size).to(dev)
    base = compact_baselines(held, loss_fn, dev)
    print(json.dumps({"held_out_all_zero_heatmap": round(base["heatmap"], 4),
                      "held_out_mean_heatmap": round(base["heatmap_prior"], 4),
                      "held_out_all_background_mask": round(base["mask"], 2),
                      "held_out_max_foreground_frequency": round(base["mask_fg_max"], 3)}), flush=True)
    rec = _Recorder(held, loss_fn, dev, out, keep, t0)

    # step 0: the same initial weights train() draws (it seeds, then builds)
    seed_everything(cfg.seed)
    untrained = build_model(cfg.net, train_set.topology).to(dev)
    save_checkpoint(out / "epoch_000.pt", checkpoint_payload(cfg, train_set.topology, untrained))
    rec.record(0, 0, untrained, None)
    del untrained
    result = train(cfg, device=args.device, progress=False, datasets=(train_set, []), on_epoch=rec.record, log=print)
    wall = time.perf_counter() - t0
    # the same numbers through the command users run
    cli = _cli_eval(out, args.eval, dev)
    h = result["history"]
    report = {
        "device": result["device"], "threads": args.threads, "config": Path(args.config).name,
        "train_samples": args.train, "held_out_samples": args.eval, "epochs": args.epochs, "batch": args.batch,
        "lr": args.lr, "lr_decay_epoch": cfg.lr_decay_epoch, "edge_loss_epoch": cfg.edge_loss_epoch,
        "steps": rec.curve[-1]["step"], "wall_minutes": round(wall / 60, 1),
        "train_samples_per_second": round(result["samples_per_second"], 2),
        "loss_first_epoch": round(h[0]["total"], 2), "loss_last_epoch": round(h[-1]["total"], 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report, indent=2))
    print(json.dumps(cli, indent=2))
    if args.write:
        lines = _results_section(args, argv, report, base, rec.curve, cli)
        with open(ROOT / "bench" / "RESULTS.md", "a") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
