"""The two-hand refiner's gate: today's default path side by side with the same
path plus the refiner (``run_pipeline(refiner=True)``), on the rendered
interacting clips ``assets/samples/interact_*.mp4`` (ground truth in ``.npz``).

    .venv/bin/python bench/refiner.py                  # all clips, both paths, ~5-10 min on a shared CPU
    .venv/bin/python bench/refiner.py --clips pray cross --no-write

Per clip and path (metric definitions of :mod:`bench.interaction` where shared):

* ``MPJPE``: mm, keypoints relative to the middle-finger MCP, cleaned output vs
  ground truth, over frames where the hand is seen (>= 30 % unhidden) and on the
  right ground-truth hand;
* ``PA-MPJPE``: mm, the same after the best similarity transform per hand-frame;
* ``hidden``: mm, MPJPE (middle-MCP relative) of the joints the other hand or
  the hand itself hides (the refiner's visibility test on the ground truth) --
  the hidden-finger error; ``hid. fr.``: hand-frames with such joints;
* ``MRRPE``: mm, error of the right-wrist-minus-left-wrist vector where both are right;
* ``pen.``: mm, mean deepest vertex of one fitted hand inside the other (every 3rd frame);
* ``2D``: px, mean distance of the output's projected 3D keypoints to the ground-truth 2D;
* ``refine %``: the refine stage's share of the pipeline's wall time.

Paths: ``today`` (refiner off), ``refiner`` (refine stage mode ``full``),
``refiner-scale`` (mode ``scale``: the detector's articulation at the refined
hand size).  The default engine uses the refiner only if it wins on these without hurting
2D alignment (``lagc_hand.pipeline.REFINER_DEFAULT``).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("left", "right")
VISIBLE = 0.3


def _hidden_joints(gt, T: int) -> np.ndarray:
    """(T, 2, 21) bool: ground-truth joints hidden in the image."""
    from lagc_hand.synth.refiner_pairs import _forward, joint_visibility
    from lagc_hand.pipeline import load_hand_model

    W, H = (int(x) for x in gt["image_size"])
    pm = {s: load_hand_model("open", s) for s in SIDES}
    verts = {s: _forward(pm[s][1], gt[f"{s}_rotmats"][:T], gt[f"{s}_wrist"][:T])[0] for s in SIDES}
    faces = {s: pm[s][0].f for s in SIDES}
    kp = np.stack([gt[f"{s}_keypoints3d"][:T] for s in SIDES], 1)
    return np.stack([~joint_visibility(kp[t], np.stack([verts[s][t] for s in SIDES]), faces, gt["K"], (W, H))
                     for t in range(T)])


#: path -> refine stage mode (None = the refiner off)
PATHS = {"today": None, "refiner": "full", "refiner-scale": "scale"}


def evaluate(video: Path, gt_path: Path, mode: str | None, hidden: np.ndarray | None = None) -> dict:
    """One path on one clip (``mode``: refine stage mode, None = off); returns
    the metrics of the module docstring."""
    sys.path.insert(0, str(ROOT))
    from bench.accuracy import procrustes_error
    from bench.interaction import _mesh
    from lagc_hand.api import ReconstructOptions
    from lagc_hand.engines.dedup import hand_size
    from lagc_hand.fitting.penetration import penetration_depth
    from lagc_hand.pipeline import load_hand_model, run_pipeline
    from lagc_hand.placement.intrinsics import horizontal_fov_deg

    from lagc_hand.refine import stage

    gt = np.load(gt_path)
    K = gt["K"]
    t0 = time.perf_counter()
    stage.DEFAULT_MODE = mode or stage.DEFAULT_MODE
    res = run_pipeline(video, ReconstructOptions(fov_deg=horizontal_fov_deg(K, int(gt["image_size"][0])), device="cpu"),
                       refiner=mode is not None)
    seconds = time.perf_counter() - t0
    m = res.motion
    T = m.num_frames
    hidden = _hidden_joints(gt, T) if hidden is None else hidden
    g2 = {s: gt[f"{s}_keypoints2d"][:T] for s in SIDES}
    g3 = {s: gt[f"{s}_keypoints3d"][:T] for s in SIDES}
    vis = {s: gt[f"{s}_visible"][:T] >= VISIBLE for s in SIDES}
    ok, err, pa, hid, px = {}, [], [], [], []
    hid_frames = 0
    for k, s in enumerate(SIDES):
        o = SIDES[1 - k]
        h = m.hands[s]
        size = np.array([hand_size(q) for q in g2[s]])
        d_own = np.linalg.norm(h.keypoints2d - g2[s], axis=-1).mean(-1) / size
        d_other = np.linalg.norm(h.keypoints2d - g2[o], axis=-1).mean(-1) / size
        ok[s] = h.present & (d_own < 0.5) & (d_own < d_other)
        sel = ok[s] & vis[s]
        if not sel.any():
            continue
        p, g = h.clean.keypoints3d[sel], g3[s][sel]
        e = np.linalg.norm((p - p[:, 9:10]) - (g - g[:, 9:10]), axis=-1)  # (n, 21)
        err.append(e.mean(-1))
        pa.append(procrustes_error(p, g))
        hj = hidden[:T, k][sel]
        hid.append(e[hj])
        hid_frames += int(hj.any(-1).sum())
        proj = p[..., :2] / p[..., 2:3] * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]
        px.append(np.linalg.norm(proj - g2[s][sel], axis=-1).mean(-1))
    both = ok["left"] & ok["right"] & vis["left"] & vis["right"]
    mrrpe = float("nan")
    if both.any():
        pr = m.hands["right"].clean.root[both] - m.hands["left"].clean.root[both]
        gr = g3["right"][both, 0] - g3["left"][both, 0]
        mrrpe = float(np.linalg.norm(pr - gr, axis=-1).mean() * 1000)
    pen = []
    frames = np.flatnonzero(m.hands["left"].present & m.hands["right"].present)[::3]
    if frames.size:
        v, f = {}, {}
        for s in SIDES:
            params, model = load_hand_model("open", s, "cpu")
            h = m.hands[s]
            v[s], f[s] = _mesh(model, h.clean.quats[frames], h.clean.root[frames], h.betas), params.f
        for i in range(len(frames)):
            a, _ = penetration_depth(v["left"][i][::2], v["right"][i], f["right"])
            b, _ = penetration_depth(v["right"][i][::2], v["left"][i], f["left"])
            pen.append(max(a, b))
    mean = lambda xs: float(np.concatenate(xs).mean()) if xs and sum(len(x) for x in xs) else float("nan")  # noqa: E731
    stages = res.summary["seconds"]
    return {"frames": T, "mpjpe_mm": mean(err) * 1000, "pa_mpjpe_mm": mean(pa) * 1000, "hidden_mm": mean(hid) * 1000,
            "hidden_frames": hid_frames, "mrrpe_mm": mrrpe, "penetration_mm": float(np.mean(pen) * 1000) if pen else float("nan"),
            "reproj_px": mean(px), "refine_share": stages.get("refine", 0.0) / max(res.summary["total_seconds"], 1e-9),
            "seconds": seconds, "hidden": hidden}


def main(names=None, write: bool = True) -> int:
    sys.path.insert(0, str(ROOT))
    from bench.interaction import clips

    found = clips(names)
    if not found:
        print("no interact_*.mp4/.npz clips in assets/samples; run scripts/render_interacting.py", file=sys.stderr)
        return 1
    keys = ("mpjpe_mm", "pa_mpjpe_mm", "hidden_mm", "mrrpe_mm", "penetration_mm", "reproj_px")
    rows, sums = [], {c: {k: [] for k in keys + ("refine_share", "seconds")} for c in PATHS}
    for name, mp4, npz in found:
        hidden = None
        for c, mode in PATHS.items():
            r = evaluate(mp4, npz, mode, hidden)
            hidden = r.pop("hidden")
            rows.append((name, c, r))
            for k in sums[c]:
                sums[c][k].append(r[k])
            print(f"{name:10s} {c:13s} MPJPE {r['mpjpe_mm']:.1f} PA {r['pa_mpjpe_mm']:.1f} hidden {r['hidden_mm']:.1f} "
                  f"({r['hidden_frames']} hand-frames) MRRPE {r['mrrpe_mm']:.1f} pen {r['penetration_mm']:.2f} mm "
                  f"2D {r['reproj_px']:.2f} px refine {100 * r['refine_share']:.1f} % {r['seconds']:.1f} s", flush=True)
    lines = ["| clip | path | MPJPE mm | PA-MPJPE mm | hidden joints mm (hand-frames) | MRRPE mm | penetration mm "
             "| 2D px | refine % of wall |", "|---|---|---|---|---|---|---|---|---|"]
    for name, c, r in rows:
        lines.append(f"| {name} | {c} | {r['mpjpe_mm']:.1f} | {r['pa_mpjpe_mm']:.1f} | {r['hidden_mm']:.1f} "
                     f"({r['hidden_frames']}) | {r['mrrpe_mm']:.1f} | {r['penetration_mm']:.2f} | {r['reproj_px']:.2f} | "
                     f"{100 * r['refine_share']:.1f} |")
    for c in sums:
        s = {k: float(np.nanmean(v)) for k, v in sums[c].items()}
        lines.append(f"| **mean** | {c} | {s['mpjpe_mm']:.1f} | {s['pa_mpjpe_mm']:.1f} | {s['hidden_mm']:.1f} | "
                     f"{s['mrrpe_mm']:.1f} | {s['penetration_mm']:.2f} | {s['reproj_px']:.2f} | "
                     f"{100 * s['refine_share']:.1f} |")
    table = "\n".join(lines)
    print(table)
    if write:
        from bench.common import append_results

        append_results("Two-hand refiner gate (bench/refiner.py): today's default path vs + refiner",
                       "Rendered clips `assets/samples/interact_*.mp4`; `today` = default engine and tracking, "
                       "single-hand fits; `refiner` = the same with the refine stage (assets/refiner/refiner.pt) "
                       "between tracking and placement (mode `full`: the refined keypoints where both hands are "
                       "present); `refiner-scale` = mode `scale` (the detector's keypoints at the refined hand size).\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from bench.common import run_clips_cli

    sys.exit(run_clips_cli(__doc__, main))
