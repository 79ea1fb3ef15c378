"""Training and evaluation of the LAGC-Hand network (no CLI here;
``lagc_hand.commands.{train,eval}`` wrap these).  Checkpoint files are written
and read by :mod:`.checkpoint`.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from lagc_hand.errors import InputError

from .checkpoint import checkpoint_payload, read_checkpoint, save_checkpoint
from .coarsen import level_pooling
from .config import TrainConfig
from .data.sample import HEATMAP_SIZE, gaussian_heatmaps
from .data.synthetic import collate
from .losses import LAGCLoss, LossWeights
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
    """(train, val) datasets for ``cfg.data``: ``"synthetic"`` or an InterHand2.6M
    folder (train split augmented per ``cfg.augment``, test split plain; frame
    indexes cached as ``{index_dir or out_dir}/interhand_{split}_index.npz``)."""
    if cfg.data == "synthetic":
        from .data.synthetic import SyntheticTwoHands

        train = SyntheticTwoHands(cfg.synthetic_train, cfg.synthetic_seed, cfg.hand_model, topology)
        val = SyntheticTwoHands(cfg.synthetic_val, cfg.synthetic_seed + 1_000_003, cfg.hand_model, train.topology)
        return train, val
    from .data.interhand import InterHandDataset

    index_dir = Path(cfg.index_dir or cfg.out_dir)
    train = InterHandDataset(cfg.data, "train", cfg.hand_model, topology, index_cache=index_dir / "interhand_train_index.npz",
                             augment=cfg.augment, seed=cfg.seed, workers=cfg.workers)
    val = InterHandDataset(cfg.data, "test", cfg.hand_model, train.topology, index_cache=index_dir / "interhand_test_index.npz",
                           workers=cfg.workers)
    return train, val


def _worker_init(_: int) -> None:
    # each worker decodes and crops one item at a time: one thread each
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(0)


def make_loader(dataset, batch_size: int, workers: int = 0, sampler=None, pin_memory: bool = False):
    """DataLoader over sample dicts -> batches of tensors (:func:`collate`)."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=workers,
                                       collate_fn=collate, pin_memory=pin_memory, worker_init_fn=_worker_init if workers else None,
                                       persistent_workers=False)


@torch.no_grad()
def evaluate(model: LAGCHandNet, dataset, batch_size: int = 16, device: str | torch.device = "cpu", progress: bool = False,
             workers: int = 0) -> dict[str, float]:
    """IntagHand protocol over ``dataset`` (samples as in :mod:`.data.sample`):
    ground truth back in metres (``verts3d / scale``), MPJPE/MPVPE in mm."""
    from tqdm import tqdm

    model.eval()
    meter = IntagHandMeter()
    n = (len(dataset) + batch_size - 1) // batch_size
    loader = make_loader(dataset, batch_size, workers) if workers else batches(dataset, batch_size, False)
    for batch in tqdm(loader, total=n, desc="eval", disable=not progress, leave=False):
        out = model(batch["image"].to(device))
        s = batch["scale"].double().numpy()[:, None, None, None]
        meter.update(
            out["joints"].double().cpu().numpy(), batch["joints3d"].double().numpy() / s,
            out["vertices"].double().cpu().numpy(), batch["verts3d"].double().numpy() / s,
        )
    return meter.summary()


@dataclass
class DistInfo:
    """This process's place in a torchrun/DDP job (rank 0 of 1 when alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1 in the
    environment): NCCL for CUDA, gloo on CPU.  Alone: nothing to join."""
    import os

    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    owns = False
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and not device.startswith("cpu")
        dist.init_process_group("nccl" if cuda else "gloo")
        owns = True
    return DistInfo(rank, world, local, owns)


@dataclass
class AmpSettings:
    enabled: bool = False
    dtype: torch.dtype | None = None
    scaler: bool = False  # fp16 needs loss scaling; bf16 has fp32's range


def amp_settings(amp: bool | str, dev: torch.device) -> AmpSettings:
    """Resolve ``TrainConfig.amp`` for a device (see its docstring)."""
    cuda = dev.type == "cuda"
    mode = {True: "auto", False: "off"}.get(amp, amp) if isinstance(amp, bool) else str(amp).lower()
    if mode == "auto":
        if not cuda:
            return AmpSettings()
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mode == "off":
        return AmpSettings()
    if mode == "bf16":
        if cuda and not torch.cuda.is_bf16_supported():
            raise InputError("amp 'bf16' was asked for but this GPU has no bfloat16 (use 'fp16')")
        return AmpSettings(True, torch.bfloat16, False)
    if mode == "fp16":
        if not cuda:
            raise InputError("amp 'fp16' needs a CUDA device (on CPU use 'bf16' or 'off')")
        return AmpSettings(True, torch.float16, True)
    raise InputError(f"amp must be true, false, 'bf16', 'fp16' or 'off', not {amp!r}")


def rng_state() -> dict:
    """Every random generator training draws from (dropout, shuffling helpers)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _datasets(cfg: TrainConfig, datasets, dist: DistInfo):
    """(train, val); under DDP rank 0 builds (and caches the indexes) first."""
    import torch.distributed as tdist

    if datasets is not None:
        return datasets
    if dist.world > 1 and not dist.main:
        tdist.barrier()
    out = make_datasets(cfg)
    if dist.world > 1 and dist.main:
        tdist.barrier()
    return out


def _train_epoch(net, loader, loss_fn, opt, scaler, amp: AmpSettings, dev, use_edge: bool, step: int,
                 max_steps: int | None, bar) -> tuple[dict[str, float], int, int]:
    """One pass over ``loader``; returns (mean loss terms, step, samples)."""
    sums: dict[str, float] = {}
    count = samples = 0
    for batch in loader:
        batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(dev.type, dtype=amp.dtype, enabled=amp.enabled):
            pred = net(batch["image"])
        total, terms = loss_fn(pred, batch, use_edge=use_edge)
        opt.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt)
        scaler.update()
        step += 1
        count += 1
        samples += batch["image"].shape[0]
        terms["total"] = float(total.detach())
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.update(1)
        bar.set_postfix(loss=f"{terms['total']:.3f}")
        if max_steps is not None and step >= max_steps:
            break
    return {k: v / max(count, 1) for k, v in sums.items()}, step, samples


def train(cfg: TrainConfig, resume: str | Path | None = None, device: str = "auto", progress: bool = True,
          datasets=None, log: Callable[[str], None] = print,
          on_epoch: Callable[[int, int, LAGCHandNet, Path], None] | None = None) -> dict:
    """Train per ``cfg``; returns ``{"history": [...], "checkpoint": path, "val": metrics,
    "model": the trained network (unwrapped), ...}``.

    ``datasets``: optional (train, val) to use instead of :func:`make_datasets`;
    a dataset with ``set_epoch`` (InterHand2.6M) streams through DataLoader
    workers, any other (synthetic) is rendered once into a :class:`CompactCache`.
    Under torchrun (``WORLD_SIZE`` > 1) it runs DDP with a DistributedSampler;
    only rank 0 logs, writes checkpoints and evaluates.  Resume restores the
    model, optimiser, scheduler, scaler, epoch, step and RNG state; data order
    and augmentation are functions of (seed, epoch), so a resumed run repeats
    the uninterrupted one.  ``on_epoch(epoch_done, step, model, checkpoint_path)``:
    called on rank 0 after every epoch (after its checkpoint is written, if one
    is due); training mode is restored afterwards."""
    from tqdm import tqdm

    seed_everything(cfg.seed)
    dist = init_distributed(device)
    dev = resolve_device(device)
    if dev.type == "cuda" and dist.world > 1:
        dev = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(dev)
    say = log if dist.main else (lambda _: None)
    train_set, val_set = _datasets(cfg, datasets, dist)
    topo = train_set.topology
    source = train_set if hasattr(train_set, "set_epoch") else CompactCache(train_set, progress and dist.main)
    model = build_model(cfg.net, topo).to(dev)
    pooling = level_pooling(model.hierarchy) if cfg.net.head == "graph" and cfg.net.graph.submesh else None
    loss_fn = LAGCLoss(topo.faces, cfg.net.image_size, LossWeights(submesh=cfg.submesh_weight), pooling).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    decay_at = cfg.lr_decay_epoch if cfg.lr_decay_epoch is not None else max(1, cfg.epochs // 2)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [decay_at], cfg.lr_decay)
    amp = amp_settings(cfg.amp, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=amp.scaler)
    edge_from = cfg.edge_loss_epoch if cfg.edge_loss_epoch is not None else cfg.epochs // 2
    start_epoch, step, history = _resume(resume, model, opt, sched, scaler, say) if resume else (0, 0, [])
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    sampler = torch.utils.data.DistributedSampler(source, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=cfg.seed)
    loader = make_loader(source, cfg.batch_size, cfg.workers, sampler, pin_memory=dev.type == "cuda")
    ckpt_path = Path(cfg.out_dir) / "last.pt"
    t0, samples_seen = time.perf_counter(), 0
    for epoch in range(start_epoch, cfg.epochs):
        sampler.set_epoch(epoch)
        if hasattr(source, "set_epoch"):
            source.set_epoch(epoch)
        net.train()
        with tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (progress and dist.main), leave=False) as bar:
            means, step, n = _train_epoch(net, loader, loss_fn, opt, scaler, amp, dev, epoch >= edge_from, step, cfg.max_steps, bar)
        samples_seen += n
        sched.step()
        history.append(means | {"epoch": epoch + 1})
        done = epoch + 1
        stop = cfg.max_steps is not None and step >= cfg.max_steps
        if dist.main and (done % cfg.checkpoint_every == 0 or done == cfg.epochs or stop):
            save_checkpoint(ckpt_path, checkpoint_payload(cfg, topo, model, opt, sched, scaler, done, step, history,
                                                          rng=rng_state(), world_size=dist.world))
        if progress:
            say(f"epoch {done}: loss {history[-1]['total']:.4f} (vert3d {history[-1]['vert3d']:.4f})")
        if on_epoch is not None and dist.main:
            on_epoch(done, step, model, ckpt_path)
            model.train()
        if stop:
            break
    elapsed = time.perf_counter() - t0
    _finish(dist)  # before the evaluation: the other ranks must not sit in a collective (NCCL timeout) meanwhile
    val = {}
    if dist.main and len(val_set):
        held = val_set if hasattr(val_set, "set_epoch") else CompactCache(val_set)
        val = evaluate(model, held, cfg.batch_size, dev, workers=cfg.workers if held is val_set else 0)
    return {"history": history, "checkpoint": str(ckpt_path), "val": val, "seconds": elapsed,
            "samples_per_second": samples_seen * dist.world / max(elapsed, 1e-9), "device": str(dev),
            "rank": dist.rank, "world_size": dist.world, "model": model}


def _resume(path, model, opt, sched, scaler, say) -> tuple[int, int, list]:
    """Load a checkpoint's training state in place; returns (epoch, step, history)."""
    ckpt = read_checkpoint(path, "cpu")
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(ckpt["scaler"])
    if ckpt.get("rng"):
        set_rng_state(ckpt["rng"])
    epoch, step = int(ckpt["epoch"]), int(ckpt["step"])
    say(f"resumed from {path} at epoch {epoch}, step {step}")
    return epoch, step, list(ckpt.get("history", []))


def _finish(dist: DistInfo) -> None:
    import torch.distributed as tdist

    if dist.world > 1:
        tdist.barrier()
        if dist.owns_group:
            tdist.destroy_process_group()
