"""LAGC-Hand checkpoint files: the one place the network touches the file system
(the rest of ``lagc_hand.net`` is torch/numpy math; the command line is in
``lagc_hand.commands``).

Checkpoint (``torch.save`` dict, written to a temp file then renamed):
``format`` ("lagc-hand-checkpoint"), ``version`` (1), ``net_config`` (dict),
``topology`` (:meth:`MeshTopology.to_dict`), ``model`` (state dict),
``optimizer``, ``scheduler``, ``scaler``, ``epoch`` (epochs finished),
``step``, ``train_config`` (dict: the whole run's config, so a checkpoint
alone rebuilds and resumes its run), ``history`` (per-epoch mean losses),
``rng`` (python/numpy/torch/CUDA generator states of rank 0 at the save),
``world_size`` (DDP processes that trained it).
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch

from lagc_hand.errors import ModelFileError

from .config import TrainConfig, net_config_from_dict
from .model import LAGCHandNet, build_model
from .topology import MeshTopology

CHECKPOINT_FORMAT = "lagc-hand-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def checkpoint_payload(cfg: TrainConfig, topology: MeshTopology, model: LAGCHandNet, opt=None, sched=None, scaler=None,
                       epoch: int = 0, step: int = 0, history: list | None = None, rng: dict | None = None,
                       world_size: int = 1) -> dict:
    """The checkpoint dict (module docstring); optimiser state may be absent
    (e.g. the untrained network saved for evaluation)."""
    return {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
        "net_config": asdict(cfg.net), "topology": topology.to_dict(), "model": model.state_dict(),
        "optimizer": opt.state_dict() if opt is not None else None,
        "scheduler": sched.state_dict() if sched is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": epoch, "step": step, "train_config": cfg.to_dict(), "history": list(history or []),
        "rng": rng, "world_size": int(world_size),
    }


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelFileError(f"checkpoint {p} does not exist")
    try:
        ckpt = torch.load(p, map_location=device, weights_only=False)
    except Exception as exc:  # torch raises many kinds on damaged files
        raise ModelFileError(f"checkpoint {p} cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{p} is not a LAGC-Hand checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ModelFileError(f"checkpoint {p} has version {ckpt.get('version')}, this build reads {CHECKPOINT_VERSION}")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[LAGCHandNet, dict]:
    """Rebuild the network stored in a checkpoint, in eval mode, on ``device``."""
    ckpt = read_checkpoint(path, "cpu")
    net = dict(ckpt["net_config"])
    if "submesh" not in net.get("graph", {}):
        # written before the sub-mesh heads existed: the network has none
        net["graph"] = dict(net.get("graph", {}), submesh=False)
    cfg = net_config_from_dict(net)
    topo = MeshTopology.from_dict(ckpt["topology"])
    model = build_model(cfg, topo)
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    if missing or unexpected:
        raise ModelFileError(f"checkpoint {path} does not match its own config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval(), ckpt
