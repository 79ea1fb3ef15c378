"""Train the two-hand refiner on synthetic data made on the fly (CPU).

Data (:class:`lagc_hand.synth.refiner_pairs.OnTheFlyData`, passed in): its sampler makes ``chunk`` interpenetration-free
pairs under random cameras and marks hidden joints with the rasteriser; each
chunk serves ``chunk_reuse`` batches, every batch with fresh detector noise
(:func:`.noise.corrupt`) -- geometry and visibility cost ~15 ms a pair, the
noise nothing.  Seeded: the same config gives the same losses on one thread.

Losses (centimetres): L1 of the root-relative keypoints of present hands, L1
of the relative root where both hands are present (x ``rel_weight``), and a
binary cross-entropy teaching the confidence ``exp(-error / 1 cm)``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .features import RefinerInput, encode
from .model import RefinerNetConfig, TwoHandRefiner
from .noise import NoiseConfig, corrupt


@dataclass
class RefinerTrainConfig:
    """``lagc-hand train --config configs/refiner.yaml`` (``mode: refiner``)."""

    seed: int = 0
    hand_model: str = "open"
    out_dir: str = "runs/refiner"
    steps: int = 6000
    batch_size: int = 64
    lr: float = 1e-3
    chunk: int = 256
    chunk_reuse: int = 24
    scene_share: float = 0.6
    scene_frames: int = 24
    val_samples: int = 256
    rel_weight: float = 0.5
    log_every: int = 50
    threads: int = 1
    net: RefinerNetConfig = field(default_factory=RefinerNetConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    @classmethod
    def from_dict(cls, d: dict) -> "RefinerTrainConfig":
        from lagc_hand.errors import InputError

        d = dict(d)
        d.pop("mode", None)
        net = RefinerNetConfig(**(d.pop("net", None) or {}))
        noise = NoiseConfig.from_dict(d.pop("noise", None))
        known = set(cls.__dataclass_fields__) - {"net", "noise"}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown refiner config keys: {', '.join(sorted(unknown))}")
        return cls(**d, net=net, noise=noise)

    def to_dict(self) -> dict:
        return {"mode": "refiner", **asdict(self)}


@dataclass
class Batch:
    """One training batch: the corrupted input and the truth (N, ...)."""

    x: RefinerInput
    keypoints: np.ndarray  # (N, 2, 21, 3) camera frame, metres


def losses(out: dict, truth: np.ndarray, x: RefinerInput, rel_weight: float) -> dict[str, torch.Tensor]:
    """Loss terms (centimetres) of one batch; see the module docstring."""
    gt = torch.as_tensor(truth, dtype=torch.float32)
    gt_rel = gt - gt[:, :, :1]
    present = torch.as_tensor(~np.asarray(x.flags)[..., 2], dtype=torch.float32)  # (N, 2)
    err = (out["keypoints3d"] - gt_rel).norm(dim=-1) * 100.0  # (N, 2, 21) cm
    kp = ((out["keypoints3d"] - gt_rel).abs().sum(-1) * 100.0 * present[..., None]).sum() / (
        present.sum().clamp_min(1.0) * 21)
    both = present[:, 0] * present[:, 1]
    rel = ((out["rel_root"] - (gt[:, 1, 0] - gt[:, 0, 0])).abs().sum(-1) * 100.0 * both).sum() / both.sum().clamp_min(1)
    target = torch.exp(-err.detach())
    conf = torch.nn.functional.binary_cross_entropy_with_logits(out["confidence_logit"], target, reduction="none")
    conf = (conf * present[..., None]).sum() / (present.sum().clamp_min(1.0) * 21)
    return {"keypoints": kp, "rel_root": rel, "confidence": conf, "total": kp + rel_weight * rel + 0.1 * conf}


def metrics(model: TwoHandRefiner, x: RefinerInput, truth: np.ndarray) -> dict[str, float]:
    """Held-out errors (mm) of the refiner against its own input: root-relative
    MPJPE of present hands and MRRPE where both are present."""
    feats, roots = encode(x)
    with torch.no_grad():
        out = model(feats, roots)
    gt_rel = truth - truth[:, :, :1]
    present = ~np.asarray(x.flags)[..., 2]
    both = present.all(1)
    e_in = np.linalg.norm(x.keypoints3d - gt_rel, axis=-1).mean(-1)[present]
    e_out = np.linalg.norm(out["keypoints3d"].numpy() - gt_rel, axis=-1).mean(-1)[present]
    gt_r = truth[:, 1, 0] - truth[:, 0, 0]
    r_in = np.linalg.norm((roots[:, 1] - roots[:, 0]).numpy() - gt_r, axis=-1)[both]
    r_out = np.linalg.norm(out["rel_root"].numpy() - gt_r, axis=-1)[both]
    return {"mpjpe_input_mm": float(e_in.mean() * 1000), "mpjpe_refined_mm": float(e_out.mean() * 1000),
            "mrrpe_input_mm": float(r_in.mean() * 1000), "mrrpe_refined_mm": float(r_out.mean() * 1000)}


def train_refiner(cfg: RefinerTrainConfig, make_data, out_dir: str | None = None, steps: int | None = None,
                  log=print) -> dict:
    """Train; write ``OUT/refiner.pt`` (config + weights + held-out metrics) and
    ``OUT/train_log.jsonl``.  Returns ``{"checkpoint", "history", "val", "seconds"}``.

    make_data: ``(cfg, rng, out_dir) -> data`` with ``data.batch()`` and
    ``data.validation()`` returning :class:`Batch` (the synthetic pairs live in
    :class:`lagc_hand.synth.refiner_pairs.OnTheFlyData`, a stage above the network)."""
    out = Path(out_dir or cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = int(steps or cfg.steps)
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = make_data(cfg, rng, out)
    val = data.validation()
    model = TwoHandRefiner(cfg.net)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    history, t0 = [], time.perf_counter()
    log_path = out / "train_log.jsonl"
    with open(log_path, "w") as fh:
        for step in range(steps):
            b = data.batch()
            feats, roots = encode(b.x)
            model.train()
            terms = losses(model(feats, roots), b.keypoints, b.x, cfg.rel_weight)
            opt.zero_grad()
            terms["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            rec = {"step": step, **{k: round(float(v.detach()), 5) for k, v in terms.items()}}
            history.append(rec)
            if step % cfg.log_every == 0 or step == steps - 1:
                model.eval()
                rec.update({k: round(v, 3) for k, v in metrics(model, val.x, val.keypoints).items()},
                           seconds=round(time.perf_counter() - t0, 1))
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                log(json.dumps(rec))
    model.eval()
    val_m = metrics(model, val.x, val.keypoints)
    ckpt = out / "refiner.pt"
    tmp = out / "refiner.pt.tmp"
    torch.save({"config": cfg.to_dict(), "state_dict": model.state_dict(), "val": val_m, "steps": steps}, tmp)
    tmp.replace(ckpt)
    return {"checkpoint": str(ckpt), "history": history, "val": val_m, "seconds": time.perf_counter() - t0}


def load_refiner(path) -> tuple[TwoHandRefiner, dict]:
    """Model (eval mode) and checkpoint dict from a ``refiner.pt``."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    model = TwoHandRefiner(RefinerNetConfig(**ck["config"]["net"]))
    model.load_state_dict(ck["state_dict"])
    return model.eval(), ck
