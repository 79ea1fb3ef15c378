"""Accuracy on a clip with ground truth (the rendered sample): raw MediaPipe vs fitted vs cleaned.

Per hand: detection rate (frames the tracker bridged while the hand was hidden
behind the other one, and frames the engine followed by optical flow meanwhile,
do not count as detected; they are counted apart and included in the errors), root-relative MPJPE (root = middle MCP, IntagHand
protocol without rescaling), PA-MPJPE (similarity Procrustes), jitter (mean
acceleration error, mm/frame^2), and for the pair MRRPE (wrist-to-wrist
vector error, mm) and identity switches (frames where a track sits nearer the
other hand's ground truth, counted at each change).

Ground truth file: an ``.npz`` with per-side keypoints ``(T, 21, 3)`` in the
camera frame, public order (keys ``{left,right}_keypoints3d`` or
``{left,right}_joints``/``..._keypoints``), optional ``{side}_present`` / ``_visible``
and ``intrinsics``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bench.common import SAMPLE, SAMPLE_GT, append_results

SIDES = ("left", "right")
ROOT_KP = 9  # middle MCP


def load_gt(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        files = {k: z[k] for k in z.files}
    gt = {"intrinsics": files.get("intrinsics")}
    for side in SIDES:
        cands = [k for k in files if k.startswith(side) and files[k].ndim == 3 and files[k].shape[1:] == (21, 3)]
        pref = [k for k in cands if "keypoints" in k or "joints" in k] or cands
        if not pref:
            raise SystemExit(f"bench accuracy: {path} has no (T, 21, 3) keypoints for the {side} hand "
                             f"(keys: {sorted(files)})")
        gt[side] = files[sorted(pref, key=len)[0]].astype(np.float64)
        vis = [k for k in files if k.startswith(side) and ("present" in k or "visible" in k) and files[k].ndim == 1]
        gt[side + "_present"] = files[vis[0]].astype(bool) if vis else np.ones(len(gt[side]), bool)
    return gt


def procrustes_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame mean error after the best similarity transform. (T,21,3) -> (T,)."""
    p = pred - pred.mean(1, keepdims=True)
    g = gt - gt.mean(1, keepdims=True)
    H = np.einsum("tni,tnj->tij", p, g)
    U, S, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("tji,tkj->tik", Vt, U)))
    D = np.tile(np.eye(3), (len(p), 1, 1))
    D[:, 2, 2] = d
    R = np.einsum("tji,tjk,tlk->til", Vt, D, U)
    s = np.einsum("tii->t", np.einsum("tij,tjk->tik", np.diag(np.ones(3))[None] * S[:, None, :], D)) / np.maximum(
        (p * p).sum((1, 2)), 1e-12)
    aligned = s[:, None, None] * np.einsum("tij,tnj->tni", R, p)
    return np.linalg.norm(aligned - g, axis=-1).mean(1)


def hand_metrics(pred: np.ndarray, present: np.ndarray, gt: np.ndarray, gt_present: np.ndarray,
                 bridged: np.ndarray | None = None, followed: np.ndarray | None = None) -> dict:
    """Metrics of one hand.  bridged / followed: (T,) bool frames the tracker filled in, or
    the engine followed by optical flow, while the hand was hidden (not detected): left out
    of the detection rate, kept in the errors (they are part of the output)."""
    both = present & gt_present
    detected = present.copy()
    for extra in (bridged, followed):
        if extra is not None:
            detected &= ~extra
    out = {"detection_%": 100.0 * detected[gt_present].mean() if gt_present.any() else float("nan"),
           "bridged": int(bridged.sum()) if bridged is not None else 0,
           "followed": int(followed.sum()) if followed is not None else 0}
    if not both.any():
        return out | {"mpjpe_mm": float("nan"), "pa_mpjpe_mm": float("nan"), "jitter_mm": float("nan")}
    p, g = pred[both], gt[both]
    rel = (p - p[:, ROOT_KP:ROOT_KP + 1]) - (g - g[:, ROOT_KP:ROOT_KP + 1])
    out["mpjpe_mm"] = 1000 * np.linalg.norm(rel, axis=-1).mean()
    out["pa_mpjpe_mm"] = 1000 * procrustes_error(p, g).mean()
    # Acceleration error on runs of three consecutive frames where both exist.
    ok = both[2:] & both[1:-1] & both[:-2]
    if ok.any():
        acc_p = pred[2:] - 2 * pred[1:-1] + pred[:-2]
        acc_g = gt[2:] - 2 * gt[1:-1] + gt[:-2]
        out["jitter_mm"] = 1000 * np.linalg.norm(acc_p - acc_g, axis=-1)[ok].mean()
    else:
        out["jitter_mm"] = float("nan")
    return out


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) metres -> pixels (..., 2) with intrinsics K (3, 3)."""
    p = points @ np.asarray(K, np.float64).T
    return p[..., :2] / np.maximum(p[..., 2:3], 1e-6)


def _hand_size_px(kp2d: np.ndarray) -> np.ndarray:
    """(..., 21, 2) -> (...,) pixels: wrist -> middle MCP plus index-to-pinky MCP span."""
    return (np.linalg.norm(kp2d[..., 9, :] - kp2d[..., 0, :], axis=-1)
            + np.linalg.norm(kp2d[..., 5, :] - kp2d[..., 17, :], axis=-1))


def identity_switches(preds: dict, presents: dict, gt: dict) -> int:
    """Count changes of 'which GT hand is this track on' along each track.

    A track's frame is on the GT hand whose projected keypoints are nearest in
    the image: mean 2D distance over all 21 keypoints, in GT hand sizes.  Both
    prediction and GT are projected with the GT intrinsics.  The earlier rule
    (nearest GT *wrist* in 3D) counted depth errors as identity switches: when
    one hand passes behind the other the placed wrist can be centimetres off
    in depth while the hand in the image is the right one (two_hands.mp4:
    4 "switches" of the placed landmarks, of which only the ones at frames
    87-89 were real).  Without intrinsics in the GT file the 3D rule is kept,
    on all 21 keypoints.
    """
    K = gt.get("intrinsics")
    switches = 0
    for side in SIDES:
        other = "right" if side == "left" else "left"
        nearest_prev = None
        for t in np.flatnonzero(presents[side]):
            d = {}
            for s in (side, other):
                if not gt[s + "_present"][t]:
                    d[s] = np.inf
                elif K is not None:
                    g2 = _project(gt[s][t], K)
                    d[s] = np.linalg.norm(_project(preds[side][t], K) - g2, axis=-1).mean() / _hand_size_px(g2)
                else:
                    d[s] = np.linalg.norm(preds[side][t] - gt[s][t], axis=-1).mean()
            if not np.isfinite(min(d.values())):
                continue
            nearest = side if d[side] <= d[other] else other
            if nearest_prev is not None and nearest != nearest_prev:
                switches += 1
            nearest_prev = nearest
    return switches


def mrrpe(preds: dict, presents: dict, gt: dict) -> float:
    m = presents["left"] & presents["right"] & gt["left_present"] & gt["right_present"]
    if not m.any():
        return float("nan")
    rp = preds["right"][m, 0] - preds["left"][m, 0]
    rg = gt["right"][m, 0] - gt["left"][m, 0]
    return 1000 * np.linalg.norm(rp - rg, axis=1).mean()


def evaluate(video: Path, gt_path: Path) -> tuple[dict, dict]:
    from lagc_hand.api import ReconstructOptions
    from lagc_hand.pipeline import run_pipeline

    gt = load_gt(gt_path)
    opts = ReconstructOptions()
    K = gt.get("intrinsics")
    if K is not None:  # the true camera, principal point included (the same K bit for bit on the sample)
        opts.intrinsics = (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
    inter: dict = {}
    res = run_pipeline(video, opts, intermediates=inter)
    m = res.motion
    T = m.num_frames
    idx = m.frames
    gt_t = {k: (v[idx] if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) >= idx.max() + 1 and k != "intrinsics" else v)
            for k, v in gt.items()}
    variants = {
        "mediapipe (placed world landmarks)": ({s: inter["placements"][s].keypoints3d for s in SIDES},
                                               {s: inter["tracking"].tracks[s].present for s in SIDES}),
        "fitted (raw)": ({s: m.hands[s].raw.keypoints3d for s in SIDES}, {s: m.hands[s].present for s in SIDES}),
        "cleaned": ({s: m.hands[s].clean.keypoints3d for s in SIDES}, {s: m.hands[s].present for s in SIDES}),
    }
    table = {}
    for name, (preds, pres) in variants.items():
        row = {s: hand_metrics(preds[s], pres[s], gt_t[s], gt_t[s + "_present"],
                               inter["tracking"].tracks[s].bridged, inter["tracking"].tracks[s].followed)
               for s in SIDES}
        row["mrrpe_mm"] = mrrpe(preds, pres, gt_t)
        row["identity_switches"] = identity_switches(preds, pres, gt_t)
        table[name] = row
    return table, res.summary | {"frames": T}


def format_table(table: dict) -> str:
    cols = ["detection_%", "mpjpe_mm", "pa_mpjpe_mm", "jitter_mm"]
    lines = ["| variant | hand | detection % | followed frames | bridged frames | MPJPE mm | PA-MPJPE mm "
             "| jitter mm/f² | MRRPE mm | ID switches |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in table.items():
        for s in SIDES:
            vals = [f"{row[s].get(c, float('nan')):.2f}" for c in cols]
            vals[1:1] = [str(row[s].get("followed", 0)), str(row[s].get("bridged", 0))]
            lines.append(f"| {name} | {s} | {' | '.join(vals)} | {row['mrrpe_mm']:.1f} | {row['identity_switches']} |")
    return "\n".join(lines)


def main(video: str | None = None, gt: str | None = None, write: bool = True) -> int:
    v = Path(video) if video else SAMPLE
    g = Path(gt) if gt else SAMPLE_GT
    missing = [str(p) for p in (v, g) if not p.exists()]
    if missing:
        print(f"bench accuracy: missing {', '.join(missing)}; render the sample with "
              f"scripts/render_sample.py first", file=sys.stderr)
        return 2
    table, summary = evaluate(v, g)
    text = format_table(table)
    print(text)
    if write:
        append_results(f"Accuracy on {v.name} ({summary['frames']} frames)", text)
    return 0
