"""Interacting hands: our default pipeline side by side with raw MediaPipe, on the
rendered ``assets/samples/interact_*.mp4`` clips (ground truth in ``.npz``).

    .venv/bin/python -m bench interaction            # or: .venv/bin/python bench/interaction.py
    .venv/bin/python bench/interaction.py --clips pray cross --no-write

Per clip and configuration:

* ``both %``: of the frames where both hands are visible (each >= 30 % of its
  image area unhidden), the share where both tracks are present **and** each
  track lies on the right ground-truth hand (mean 2D keypoint distance to it
  below half a hand size, and nearer to it than to the other hand);
* ``seen %``: the same, counting only frames where both hands were found in
  *that frame's image* -- detected by the landmark model, or followed by
  optical flow while partly hidden (:mod:`lagc_hand.engines.follow`) --
  not filled in by the tracker's interpolation while hidden behind the other
  hand (:mod:`lagc_hand.tracking.occlusion`); ``bridged``: such filled frames
  (either hand) among the both-visible ones;
* ``detected %``: the same, counting only frames where both hands were
  detected by the landmark model (neither followed nor bridged);
  ``followed``: frames (either hand) found by optical flow;
* ``swaps``: frames where a track jumped to the other hand's position;
* ``MPJPE``: mm, keypoints relative to the middle-finger MCP (IntagHand's
  root), cleaned output vs ground truth, over correctly-sided frames;
* ``MRRPE``: mm, error of the right-wrist-minus-left-wrist vector;
* ``pen.``: mm, mean over both-present frames (every 3rd) of the deepest
  vertex of one fitted hand inside the other's mesh (winding numbers);
* ``fps``: frames per second end to end on this machine.

Configurations: ``raw`` = ``mediapipe-raw`` engine, label+chirality tracking,
single-hand fits (the pipeline before issue 8); ``ours`` = ``mediapipe`` engine
(recovery + de-duplication), chirality-first sides, two-hand fit.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
SIDES = ("left", "right")
#: config -> (engine, interaction side evidence, joint two-hand fit)
CONFIGS = {"raw": ("mediapipe-raw", False, False), "ours": ("mediapipe", True, False),
           "ours+2fit": ("mediapipe", True, True)}
VISIBLE = 0.3


def _mesh(model, quats, root, betas):
    import torch

    from lagc_hand_blender.core.rotations import quat_to_matrix

    with torch.no_grad():
        b = torch.as_tensor(np.asarray(betas)[None], dtype=model.v_template.dtype)
        j0 = model.rest_joints(b)[0, 0]
        R = torch.as_tensor(quat_to_matrix(np.asarray(quats)), dtype=model.v_template.dtype)
        out = model.forward_rotmat(R, b, torch.as_tensor(np.asarray(root), dtype=model.v_template.dtype) - j0)
    return out.vertices.cpu().numpy().astype(np.float64)


def _side_accuracy(hands: dict, g2: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Per side, (T,) bool: the track is present and lies on its own ground-truth hand
    (mean 2D keypoint distance below half a hand size and nearer than to the other
    hand); and the number of frames (both sides) where a track lies on the other hand.

    hands: side -> the motion's hand track (``keypoints2d`` (T, 21, 2) px, ``present`` (T,));
    g2: side -> (T, 21, 2) ground-truth keypoints, px."""
    from lagc_hand.engines.dedup import hand_size

    right_side = {}
    swaps = 0
    for s in SIDES:
        o = "right" if s == "left" else "left"
        h = hands[s]
        size = np.array([hand_size(k) for k in g2[s]])
        d_own = np.linalg.norm(h.keypoints2d - g2[s], axis=-1).mean(-1) / size
        d_other = np.linalg.norm(h.keypoints2d - g2[o], axis=-1).mean(-1) / size
        right_side[s] = h.present & (d_own < 0.5) & (d_own < d_other)
        swaps += int(np.sum(h.present & (d_other < 0.5) & (d_other < d_own)))
    return right_side, swaps


def _mpjpe_mrrpe(hands: dict, g3: dict[str, np.ndarray], right_side: dict[str, np.ndarray],
                 vis: dict[str, np.ndarray], ok_both: np.ndarray) -> tuple[float, float]:
    """(MPJPE, MRRPE) in mm of the cleaned output: keypoints relative to the middle MCP over
    correctly-sided visible frames, and the right-minus-left wrist vector over ``ok_both``
    (T,) frames; NaN where there is no such frame.  g3: side -> (T, 21, 3) metres."""
    errs = []
    for s in SIDES:
        sel = right_side[s] & vis[s]
        if sel.any():
            p = hands[s].clean.keypoints3d[sel]
            g = g3[s][sel]
            errs.append(np.linalg.norm((p - p[:, 9:10]) - (g - g[:, 9:10]), axis=-1).mean(-1))
    mpjpe = float(np.concatenate(errs).mean() * 1000) if errs else float("nan")
    mrrpe = float("nan")
    if ok_both.any():
        pr = hands["right"].clean.root[ok_both] - hands["left"].clean.root[ok_both]
        gr = g3["right"][ok_both, 0] - g3["left"][ok_both, 0]
        mrrpe = float(np.linalg.norm(pr - gr, axis=-1).mean() * 1000)
    return mpjpe, mrrpe


def _penetrations(hands: dict) -> list[float]:
    """Deepest vertex (metres) of one fitted hand inside the other's mesh, per frame where
    both are present (every 3rd such frame); meshes of the open hand model."""
    from lagc_hand.fitting.penetration import penetration_depth
    from lagc_hand.pipeline import load_hand_model

    pen = []
    both_present = np.flatnonzero(hands["left"].present & hands["right"].present)[::3]
    if both_present.size:
        v = {}
        for s in SIDES:
            params, model = load_hand_model("open", s, "cpu")
            h = hands[s]
            v[s] = _mesh(model, h.clean.quats[both_present], h.clean.root[both_present], h.betas)
            v[s + "_faces"] = params.f
        for i in range(len(both_present)):
            a, _ = penetration_depth(v["left"][i][::2], v["right"][i], v["right_faces"])
            b, _ = penetration_depth(v["right"][i][::2], v["left"][i], v["left_faces"])
            pen.append(max(a, b))
    return pen


def evaluate(video: Path, gt_path: Path, config: str) -> dict:
    """Run one configuration on one clip; returns the metrics (see the module docstring)."""
    from lagc_hand.api import ReconstructOptions
    from lagc_hand.pipeline import run_pipeline
    from lagc_hand.placement.intrinsics import horizontal_fov_deg

    gt = np.load(gt_path)
    engine, interaction, two_hand_fit = CONFIGS[config]
    W = int(gt["image_size"][0])
    fov = horizontal_fov_deg(gt["K"], W)
    t0 = time.perf_counter()
    inter: dict = {}
    res = run_pipeline(video, ReconstructOptions(engine=engine, fov_deg=fov, device="cpu"), interaction=interaction,
                       two_hand_fit=two_hand_fit, intermediates=inter)
    seconds = time.perf_counter() - t0
    m = res.motion
    T = m.num_frames
    g2 = {s: gt[f"{s}_keypoints2d"][:T] for s in SIDES}
    g3 = {s: gt[f"{s}_keypoints3d"][:T] for s in SIDES}
    vis = {s: gt[f"{s}_visible"][:T] >= VISIBLE for s in SIDES}
    both_vis = vis["left"] & vis["right"]
    right_side, swaps = _side_accuracy(m.hands, g2)
    ok_both = right_side["left"] & right_side["right"] & both_vis
    tracks = inter["tracking"].tracks
    bridged = (tracks["left"].bridged[:T] | tracks["right"].bridged[:T]) & both_vis
    followed = (tracks["left"].followed[:T] | tracks["right"].followed[:T]) & both_vis & ~bridged
    ok_seen = ok_both & ~bridged
    ok_detected = ok_seen & ~followed
    raw_both = m.hands["left"].present & m.hands["right"].present & both_vis
    mpjpe, mrrpe = _mpjpe_mrrpe(m.hands, g3, right_side, vis, ok_both)
    pen = _penetrations(m.hands)
    return {
        "frames": T,
        "both_visible": int(both_vis.sum()),
        "both_found": int(raw_both.sum()),
        "both_right_pct": 100.0 * float(ok_both.sum()) / max(int(both_vis.sum()), 1),
        "seen_right_pct": 100.0 * float(ok_seen.sum()) / max(int(both_vis.sum()), 1),
        "detected_right_pct": 100.0 * float(ok_detected.sum()) / max(int(both_vis.sum()), 1),
        "bridged": int(bridged.sum()),
        "followed": int(followed.sum()),
        "swaps": swaps,
        "mpjpe_mm": mpjpe,
        "mrrpe_mm": mrrpe,
        "penetration_mm": float(np.mean(pen) * 1000) if pen else float("nan"),
        "fps": T / seconds,
        "summary": res.summary,
    }


def clips(names=None) -> list[tuple[str, Path, Path]]:
    out = []
    for npz in sorted(SAMPLES.glob("interact_*.npz")):
        name = npz.stem.split("_", 1)[1]
        if names and name not in names:
            continue
        mp4 = npz.with_suffix(".mp4")
        if mp4.exists():
            out.append((name, mp4, npz))
    return out


def main(names=None, write: bool = True) -> int:
    found = clips(names)
    if not found:
        print("no interact_*.mp4/.npz clips in assets/samples; run scripts/render_interacting.py", file=sys.stderr)
        return 1
    rows = []
    totals = {c: {"vis": 0, "ok": 0, "seen": 0, "det": 0} for c in CONFIGS}
    for name, mp4, npz in found:
        for c in CONFIGS:
            r = evaluate(mp4, npz, c)
            totals[c]["vis"] += r["both_visible"]
            totals[c]["ok"] += round(r["both_right_pct"] * r["both_visible"] / 100)
            totals[c]["seen"] += round(r["seen_right_pct"] * r["both_visible"] / 100)
            totals[c]["det"] += round(r["detected_right_pct"] * r["both_visible"] / 100)
            rows.append((name, c, r))
            print(f"{name:10s} {c:9s} both {r['both_right_pct']:5.1f}% seen {r['seen_right_pct']:5.1f}% "
                  f"detected {r['detected_right_pct']:5.1f}% ({r['both_found']}/{r['both_visible']} found, "
                  f"{r['followed']} followed, {r['bridged']} bridged) "
                  f"swaps {r['swaps']} MPJPE {r['mpjpe_mm']:.1f} MRRPE {r['mrrpe_mm']:.1f} "
                  f"pen {r['penetration_mm']:.1f} mm  {r['fps']:.1f} fps", flush=True)
    lines = ["| clip | config | both hands, right sides | of them seen | of them detected | both found / visible "
             "| followed | bridged | swaps | MPJPE mm | MRRPE mm | penetration mm | fps |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, c, r in rows:
        lines.append(f"| {name} | {c} | {r['both_right_pct']:.1f} % | {r['seen_right_pct']:.1f} % | "
                     f"{r['detected_right_pct']:.1f} % | {r['both_found']} / {r['both_visible']} | "
                     f"{r['followed']} | {r['bridged']} | "
                     f"{r['swaps']} | {r['mpjpe_mm']:.1f} | {r['mrrpe_mm']:.1f} | {r['penetration_mm']:.1f} | "
                     f"{r['fps']:.1f} |")
    for c in CONFIGS:
        t = totals[c]
        lines.append(f"| **all** | {c} | **{100.0 * t['ok'] / max(t['vis'], 1):.1f} %** | "
                     f"{100.0 * t['seen'] / max(t['vis'], 1):.1f} % | {100.0 * t['det'] / max(t['vis'], 1):.1f} % "
                     "| | | | | | | | |")
    table = "\n".join(lines)
    print(table)
    if write:
        sys.path.insert(0, str(ROOT))
        from bench.common import append_results

        append_results("Interacting hands (bench/interaction.py): ours vs raw MediaPipe",
                       "Rendered clips `assets/samples/interact_*.mp4` (open hand model, Cycles, 640x480, 15 fps). "
                       "`raw` = mediapipe-raw engine + label/chirality tracking + single-hand fits; `ours` = "
                       "recovery + dedup engine, chirality-first sides; `ours+2fit` = with the two-hand fit. "
                       "All configurations use the tracker's occlusion bridging; `of them seen` leaves "
                       "bridged (interpolated) frames out, `of them detected` also the frames followed by "
                       "optical flow (ours only). Both-visible = each hand "
                       f">= {int(VISIBLE * 100)} % unhidden.\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from bench.common import run_clips_cli

    sys.exit(run_clips_cli(__doc__, main))
