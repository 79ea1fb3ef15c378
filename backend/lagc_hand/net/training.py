"""Training and evaluation of the LAGC-Hand network (no CLI here;
``lagc_hand.commands.{train,eval}`` wrap these).  Checkpoint files are written
and read by :mod:`.checkpoint`.
"""
from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from lagc_hand.errors import InputError

from .checkpoint import checkpoint_payload, read_checkpoint, save_checkpoint
from .config import TrainConfig
from .data.sample import HEATMAP_SIZE, gaussian_heatmaps
from .data.synthetic import collate
from .losses import LAGCLoss
from .metrics import IntagHandMeter
from .model import LAGCHandNet, build_model
from .topology import MeshTopology

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but torch sees no CUDA GPU (use --device cpu)")
    return torch.device(device)


class CompactCache:
    """Materialises a dataset once, compactly (uint8 image, no heatmaps: those
    are re-drawn from ``joints2d``), so epochs do not re-render."""

    def __init__(self, dataset, progress: bool = False):
        from tqdm import tqdm

        self.items = []
        it = range(len(dataset))
        for i in tqdm(it, desc="render", disable=not progress, leave=False):
            s = dict(dataset[i])
            s["image"] = np.round(s["image"] * 255).astype(np.uint8)
            s.pop("heatmaps", None)
            self.items.append(s)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        s = dict(self.items[i])
        s["image"] = s["image"].astype(np.float32) / 255.0
        j = s["joints2d"] * (HEATMAP_SIZE / s["image"].shape[-1])
        s["heatmaps"] = np.concatenate([gaussian_heatmaps(j[0]), gaussian_heatmaps(j[1])])
        return s


def batches(dataset, batch_size: int, shuffle: bool, rng: np.random.Generator | None = None) -> Iterable[dict[str, torch.Tensor]]:
    order = np.arange(len(dataset))
    if shuffle:
        (rng or np.random.default_rng()).shuffle(order)
    for i in range(0, len(order), batch_size):
        yield collate([dataset[int(j)] for j in order[i : i + batch_size]])


def make_datasets(cfg: TrainConfig, topology: MeshTopology | None = None):
    """(train, val) datasets for ``cfg.data``: ``"synthetic"`` or an InterHand2.6M folder."""
    if cfg.data == "synthetic":
        from .data.synthetic import SyntheticTwoHands

        train = SyntheticTwoHands(cfg.synthetic_train, cfg.synthetic_seed, cfg.hand_model, topology)
        val = SyntheticTwoHands(cfg.synthetic_val, cfg.synthetic_seed + 1_000_003, cfg.hand_model, train.topology)
        return train, val
    from .data.interhand import InterHandDataset

    train = InterHandDataset(cfg.data, "train", cfg.hand_model, topology)
    val = InterHandDataset(cfg.data, "test", cfg.hand_model, train.topology)
    return train, val


@torch.no_grad()
def evaluate(model: LAGCHandNet, dataset, batch_size: int = 16, device: str | torch.device = "cpu", progress: bool = False) -> dict[str, float]:
    """IntagHand protocol over ``dataset`` (samples as in :mod:`.data.sample`):
    ground truth back in metres (``verts3d / scale``), MPJPE/MPVPE in mm."""
    from tqdm import tqdm

    model.eval()
    meter = IntagHandMeter()
    n = (len(dataset) + batch_size - 1) // batch_size
    for batch in tqdm(batches(dataset, batch_size, False), total=n, desc="eval", disable=not progress, leave=False):
        out = model(batch["image"].to(device))
        s = batch["scale"].double().numpy()[:, None, None, None]
        meter.update(
            out["joints"].double().cpu().numpy(), batch["joints3d"].double().numpy() / s,
            out["vertices"].double().cpu().numpy(), batch["verts3d"].double().numpy() / s,
        )
    return meter.summary()


def train(cfg: TrainConfig, resume: str | Path | None = None, device: str = "auto", progress: bool = True,
          datasets=None, log: Callable[[str], None] = print,
          on_epoch: Callable[[int, int, LAGCHandNet, Path], None] | None = None) -> dict:
    """Train per ``cfg``; returns ``{"history": [...], "checkpoint": path, "val": metrics}``.

    ``datasets``: optional (train, val) to use instead of :func:`make_datasets`.
    ``on_epoch(epoch_done, step, model, checkpoint_path)``: called after every
    epoch (after its checkpoint is written, if one is due); it may evaluate the
    model, training mode is restored afterwards."""
    from tqdm import tqdm

    seed_everything(cfg.seed)
    dev = resolve_device(device)
    train_set, val_set = datasets if datasets is not None else make_datasets(cfg)
    topo = train_set.topology
    train_cache = CompactCache(train_set, progress)
    model = build_model(cfg.net, topo).to(dev)
    loss_fn = LAGCLoss(topo.faces, cfg.net.image_size).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    decay_at = cfg.lr_decay_epoch if cfg.lr_decay_epoch is not None else max(1, cfg.epochs // 2)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [decay_at], cfg.lr_decay)
    use_amp = bool(cfg.amp and dev.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    edge_from = cfg.edge_loss_epoch if cfg.edge_loss_epoch is not None else cfg.epochs // 2
    start_epoch, step, history = 0, 0, []
    out_dir = Path(cfg.out_dir)
    if resume:
        ckpt = read_checkpoint(resume, "cpu")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, step, history = int(ckpt["epoch"]), int(ckpt["step"]), list(ckpt.get("history", []))
        log(f"resumed from {resume} at epoch {start_epoch}, step {step}")
    ckpt_path = out_dir / "last.pt"
    rng = np.random.default_rng([cfg.seed, start_epoch])
    t0 = time.perf_counter()
    samples_seen = 0
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        sums: dict[str, float] = {}
        count = 0
        nb = (len(train_cache) + cfg.batch_size - 1) // cfg.batch_size
        bar = tqdm(batches(train_cache, cfg.batch_size, True, rng), total=nb, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for batch in bar:
            batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
            with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
                pred = model(batch["image"])
            total, terms = loss_fn(pred, batch, use_edge=epoch >= edge_from)
            opt.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            count += 1
            samples_seen += batch["image"].shape[0]
            terms["total"] = float(total.detach())
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{terms['total']:.3f}")
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        sched.step()
        history.append({k: v / max(count, 1) for k, v in sums.items()} | {"epoch": epoch + 1})
        done = epoch + 1
        stop = cfg.max_steps is not None and step >= cfg.max_steps
        if done % cfg.checkpoint_every == 0 or done == cfg.epochs or stop:
            save_checkpoint(ckpt_path, checkpoint_payload(cfg, topo, model, opt, sched, scaler, done, step, history))
        if progress:
            log(f"epoch {done}: loss {history[-1]['total']:.4f} (vert3d {history[-1]['vert3d']:.4f})")
        if on_epoch is not None:
            on_epoch(done, step, model, ckpt_path)
            model.train()
        if stop:
            break
    elapsed = time.perf_counter() - t0
    val = evaluate(model, CompactCache(val_set), cfg.batch_size, dev) if len(val_set) else {}
    return {"history": history, "checkpoint": str(ckpt_path), "val": val, "seconds": elapsed,
            "samples_per_second": samples_seen / max(elapsed, 1e-9), "device": str(dev)}
