"""Measure the detector error model of the two-hand refiner against ground truth.

Runs the default engine (MediaPipe + recovery/dedup/follow) and tracking on
the rendered interacting clips ``assets/samples/interact_*.mp4`` (ground truth
in the ``.npz`` beside each), marks each ground-truth joint seen or hidden with
the refiner's own visibility test (:func:`lagc_hand.synth.refiner_pairs.joint_visibility`),
and prints the numbers that ``configs/refiner.yaml``'s ``noise:`` section holds:

    .venv/bin/python scripts/refiner_noise.py            # all clips, ~2-4 min on a shared CPU

Measured per hand and frame where the hand is at least partly seen:

* ``missing_*``: share of frames with no track (seen / mostly hidden hands);
* ``followed`` / ``bridged``: share of present frames the tracker filled in;
* ``sigma2d_*``: RMS 2D error per axis of seen / hidden joints, in units of
  the ground-truth hand size (wrist->middle MCP + index->pinky MCP, 2D);
* ``sigma3d_xy`` / ``sigma3d_z``: RMS root-relative 3D error per axis (metres)
  after the hand's scale is matched; ``scale_sigma``: spread of log(size ratio);
* ``hallucinated``: share of hidden joints whose 2D error exceeds half a hand size;
* ``swap``: share of present frames whose track lies on the other hand;
* ``conf_*``: mean track confidence per state.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("left", "right")


def _size3(k: np.ndarray) -> np.ndarray:
    """(..., 21, 3|2) -> (...) hand size (wrist->middle MCP + index->pinky MCP)."""
    return np.linalg.norm(k[..., 9, :] - k[..., 0, :], axis=-1) + np.linalg.norm(k[..., 5, :] - k[..., 17, :], axis=-1)


def clip_stats(mp4: Path, npz: Path) -> dict[str, list]:
    """Per-joint and per-frame error samples of one clip (lists to pool)."""
    import torch

    from lagc_hand.api import ReconstructOptions
    from lagc_hand.synth.refiner_pairs import _forward, joint_visibility
    from lagc_hand.pipeline import load_hand_model, run_pipeline
    from lagc_hand.placement.intrinsics import horizontal_fov_deg

    gt = np.load(npz)
    K = gt["K"]
    W, H = (int(x) for x in gt["image_size"])
    inter: dict = {}
    torch.set_num_threads(1)
    run_pipeline(mp4, ReconstructOptions(fov_deg=horizontal_fov_deg(K, W), device="cpu"), intermediates=inter)
    tracks = inter["tracking"].tracks
    T = len(tracks["left"].present)
    models = {s: load_hand_model("open", s)[1] for s in SIDES}
    faces = {s: load_hand_model("open", s)[0].f for s in SIDES}
    verts = {s: _forward(models[s], gt[f"{s}_rotmats"][:T], gt[f"{s}_wrist"][:T])[0] for s in SIDES}
    g3 = np.stack([gt[f"{s}_keypoints3d"][:T] for s in SIDES], 1)  # (T, 2, 21, 3)
    g2 = np.stack([gt[f"{s}_keypoints2d"][:T] for s in SIDES], 1)
    out = {k: [] for k in ("seen_frac", "present", "followed", "bridged", "conf_state", "e2_vis", "e2_hid",
                           "e3_xy", "e3_z", "log_scale", "swap")}
    for t in range(T):
        vis = joint_visibility(g3[t], np.stack([verts[s][t] for s in SIDES]), faces, K, (W, H))
        for k, s in enumerate(SIDES):
            tr = tracks[s]
            frac = float(vis[k].mean())
            if frac == 0.0:
                continue
            out["seen_frac"].append(frac)
            out["present"].append(bool(tr.present[t]))
            if not tr.present[t]:
                continue
            state = "bridged" if tr.bridged[t] else "followed" if tr.followed[t] else "detected"
            out["followed"].append(bool(tr.followed[t]))
            out["bridged"].append(bool(tr.bridged[t]))
            out["conf_state"].append((state, float(tr.confidence[t])))
            size2 = _size3(g2[t, k])
            e_own = np.linalg.norm(tr.keypoints2d[t] - g2[t, k], axis=-1).mean()
            e_other = np.linalg.norm(tr.keypoints2d[t] - g2[t, 1 - k], axis=-1).mean()
            swapped = e_other < e_own and e_other < 0.5 * size2
            out["swap"].append(bool(swapped))
            if swapped or state == "bridged":
                continue
            e2 = (tr.keypoints2d[t] - g2[t, k]) / size2  # (21, 2)
            out["e2_vis"].extend(e2[vis[k]].ravel().tolist())
            out["e2_hid"].extend(e2[~vis[k]].ravel().tolist())
            p = tr.keypoints3d[t] - tr.keypoints3d[t, 0]
            g = g3[t, k] - g3[t, k, 0]
            ratio = _size3(p) / _size3(g)
            out["log_scale"].append(float(np.log(ratio)))
            d = p / ratio - g
            out["e3_xy"].extend(d[1:, :2].ravel().tolist())
            out["e3_z"].extend(d[1:, 2].ravel().tolist())
    return out


def summarise(pooled: dict[str, list]) -> dict[str, float]:
    rms = lambda x: float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0  # noqa: E731
    seen = np.array(pooled["seen_frac"])
    present = np.array(pooled["present"])
    hid = np.array(pooled["e2_hid"]).reshape(-1, 2)
    conf = {}
    for state in ("detected", "followed", "bridged"):
        c = [v for s, v in pooled["conf_state"] if s == state]
        conf[f"conf_{state}"] = round(float(np.mean(c)), 3) if c else 0.0
    return {
        "missing_seen": round(float(1 - present[seen >= 0.5].mean()), 4) if (seen >= 0.5).any() else 0.0,
        "missing_hidden": round(float(1 - present[seen < 0.5].mean()), 4) if (seen < 0.5).any() else 0.0,
        "followed": round(float(np.mean(pooled["followed"])), 4),
        "bridged": round(float(np.mean(pooled["bridged"])), 4),
        "sigma2d_seen": round(rms(pooled["e2_vis"]), 4),
        "sigma2d_hidden": round(rms(pooled["e2_hid"]), 4),
        "hallucinated": round(float((np.linalg.norm(hid, axis=-1) > 0.5).mean()), 4) if len(hid) else 0.0,
        "sigma3d_xy": round(rms(pooled["e3_xy"]), 4),
        "sigma3d_z": round(rms(pooled["e3_z"]), 4),
        "scale_sigma": round(float(np.std(pooled["log_scale"])), 4),
        "scale_bias": round(float(np.mean(pooled["log_scale"])), 4),
        "swap": round(float(np.mean(pooled["swap"])), 4),
        **conf,
        "hand_frames": int(len(seen)),
    }


def main(names=None) -> int:
    sys.path.insert(0, str(ROOT))
    from bench.interaction import clips

    found = clips(names)
    if not found:
        print("no interact_*.mp4/.npz clips in assets/samples", file=sys.stderr)
        return 1
    pooled: dict[str, list] = {}
    for name, mp4, npz in found:
        st = clip_stats(mp4, npz)
        print(f"{name}: {json.dumps(summarise(st))}", flush=True)
        for k, v in st.items():
            pooled.setdefault(k, []).extend(v)
    total = summarise(pooled)
    print("noise:  # measured by scripts/refiner_noise.py on " + ", ".join(n for n, _, _ in found))
    for k, v in total.items():
        if k != "hand_frames":
            print(f"  {k}: {v}")
    print(f"# {total['hand_frames']} hand-frames")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or None))
