"""Evaluation metrics, IntagHand protocol (the one LAGC-Hand's table uses).

Per hand, separately for prediction and ground truth: subtract the root
(middle-finger MCP, public index 9); rescale the prediction by
``|J9 - J0|_gt / |J9 - J0|_pred`` (wrist-to-middle-MCP length); then MPJPE =
mean joint L2 error over the 21 joints (the root contributes 0) and MPVPE =
mean vertex L2 error (vertices aligned with the same root and scale).  Errors
are reported in millimetres for the left hand, the right hand and their mean.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lagc_hand_blender.core.skeleton import PUBLIC_MIDDLE_MCP, PUBLIC_WRIST


def align_hand(pred_joints: np.ndarray, gt_joints: np.ndarray, pred_verts: np.ndarray | None = None, gt_verts: np.ndarray | None = None):
    """One or many hands: joints (..., 21, 3), verts (..., V, 3), metres.
    Returns root-relative, bone-rescaled (pred_j, gt_j, pred_v, gt_v)."""
    pj = np.asarray(pred_joints, dtype=np.float64)
    gj = np.asarray(gt_joints, dtype=np.float64)
    proot = pj[..., PUBLIC_MIDDLE_MCP : PUBLIC_MIDDLE_MCP + 1, :]
    groot = gj[..., PUBLIC_MIDDLE_MCP : PUBLIC_MIDDLE_MCP + 1, :]
    pbone = np.linalg.norm(pj[..., PUBLIC_MIDDLE_MCP, :] - pj[..., PUBLIC_WRIST, :], axis=-1)[..., None, None]
    gbone = np.linalg.norm(gj[..., PUBLIC_MIDDLE_MCP, :] - gj[..., PUBLIC_WRIST, :], axis=-1)[..., None, None]
    scale = gbone / np.maximum(pbone, 1e-12)
    out_pj = (pj - proot) * scale
    out_gj = gj - groot
    out_pv = out_gv = None
    if pred_verts is not None and gt_verts is not None:
        out_pv = (np.asarray(pred_verts, dtype=np.float64) - proot) * scale
        out_gv = np.asarray(gt_verts, dtype=np.float64) - groot
    return out_pj, out_gj, out_pv, out_gv


def hand_errors(pred_joints, gt_joints, pred_verts=None, gt_verts=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-hand MPJPE (...,) and MPVPE (...,) in millimetres (inputs in metres)."""
    pj, gj, pv, gv = align_hand(pred_joints, gt_joints, pred_verts, gt_verts)
    mpjpe = np.linalg.norm(pj - gj, axis=-1).mean(-1) * 1000.0
    mpvpe = None if pv is None else np.linalg.norm(pv - gv, axis=-1).mean(-1) * 1000.0
    return mpjpe, mpvpe


@dataclass
class IntagHandMeter:
    """Accumulates two-hand predictions: ``update`` with joints (N, 2, 21, 3)
    and optional vertices (N, 2, V, 3) (hand 0 = left), metres; ``summary``
    gives mm for left, right and mean = (left + right) / 2."""

    joint_err: list = field(default_factory=list)
    vert_err: list = field(default_factory=list)

    def update(self, pred_joints, gt_joints, pred_verts=None, gt_verts=None) -> None:
        pred_joints = np.asarray(pred_joints)
        if pred_joints.ndim != 4 or pred_joints.shape[1:] != (2, 21, 3):
            raise ValueError(f"joints must be (N, 2, 21, 3), got {pred_joints.shape}")
        mj, mv = hand_errors(pred_joints, gt_joints, pred_verts, gt_verts)
        self.joint_err.append(mj)
        if mv is not None:
            self.vert_err.append(mv)

    @property
    def count(self) -> int:
        return int(sum(len(e) for e in self.joint_err))

    def summary(self) -> dict[str, float]:
        if not self.joint_err:
            return {}
        j = np.concatenate(self.joint_err)
        out = {
            "mpjpe_left": float(j[:, 0].mean()),
            "mpjpe_right": float(j[:, 1].mean()),
        }
        out["mpjpe"] = (out["mpjpe_left"] + out["mpjpe_right"]) / 2
        if self.vert_err:
            v = np.concatenate(self.vert_err)
            out["mpvpe_left"] = float(v[:, 0].mean())
            out["mpvpe_right"] = float(v[:, 1].mean())
            out["mpvpe"] = (out["mpvpe_left"] + out["mpvpe_right"]) / 2
        out["frames"] = float(len(j))
        return out


PROTOCOL = "IntagHand (root = middle MCP, prediction rescaled by GT / predicted wrist-to-middle-MCP length)"


def protocol_table(metrics: dict[str, float], title: str = "") -> str:
    """The paper's results table for one evaluation (``IntagHandMeter.summary``):
    rows MPJPE / MPVPE, columns left, right, mean, millimetres."""
    lines = [f"{title + ': ' if title else ''}{PROTOCOL}, {int(metrics.get('frames', 0))} frames",
             f"{'':10s}{'left':>9s}{'right':>9s}{'mean':>9s}"]
    for name, key in (("MPJPE mm", "mpjpe"), ("MPVPE mm", "mpvpe")):
        if key in metrics:
            vals = [metrics[f"{key}_left"], metrics[f"{key}_right"], metrics[key]]
            lines.append(f"{name:10s}" + "".join(f"{v:9.2f}" for v in vals))
    return "\n".join(lines)
