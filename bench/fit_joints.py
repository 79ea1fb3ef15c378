"""Where the fit's 2D / 3D error sits, joint by joint (issue 13.2).

    .venv/bin/python -m bench.fit_joints [--realdev PATH] [--cache DIR] [--only a,b] [--frames N]

Runs detection, tracking and placement once per input (cached as a pickle in
``--cache``, default ``out/fit_joints``; delete it after changing the engine), then
the fit and cleanup of :mod:`lagc_hand.pipeline` on them, so a change of the fit or the
hand model is measured in seconds.  Inputs: the OneHand10K and RHD stills, the
``tfjs_asl_hand`` clip (labels = MediaPipe's own landmarks) and the rendered two-hand
clip (exact 3D).  Per input, per public joint (wrist, thumb CMC..tip, index MCP..tip,
...), in hand sizes x 100 (size = max side of the label's box):

* ``out-det``: the fitted output vs the detector's 2D (what "lies on the hand" means);
* ``out-lab`` / ``cln-lab`` / ``det-lab``: fitted / cleaned output and detector vs the labels;
* with 3D labels: the per-joint error after Procrustes alignment (mm) of out and det,
  and the absolute wrist error (mm, out and clean), the wrist's depth error (out - label,
  mm) and the fitted skeleton's size (summed bone lengths) over the label's.

The last lines give the means that :mod:`bench.real` reports (2D px ratio out / det).
"""
from __future__ import annotations

import argparse
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import real as br  # noqa: E402
from bench import real_metrics as rm  # noqa: E402

NAMES = ("160", "5", "75", "00111", "01111", "11111", "tfjs_asl_hand.25fps", "two_hands")
JOINT_NAMES = ["W", "T1", "T2", "T3", "T4", "I1", "I2", "I3", "I4", "M1", "M2", "M3", "M4",
               "R1", "R2", "R3", "R4", "L1", "L2", "L3", "L4"]


def detect_cached(inp, cache: Path) -> dict:
    """tracking, placements, K and fps of one input (the pipeline's stages up to the fit)."""
    from lagc_hand.pipeline import run_pipeline

    path = cache / f"{inp.name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    inter: dict = {}
    res = run_pipeline(inp.path, br.options_for(inp, "mediapipe"), intermediates=inter)
    d = {"tracking": inter["tracking"], "placements": inter["placements"], "K": inter["intrinsics"],
         "fps": res.motion.fps, "frames": np.asarray(res.motion.frames)}
    path.write_bytes(pickle.dumps(d))
    return d


def fit_and_clean(d: dict, side: str, cfg=None):
    """(out (T, 21, 3) m, clean (T, 21, 3) m, present (T,)) of one side, as the pipeline makes them."""
    from lagc_hand import pipeline as pl
    from lagc_hand.fitting import FitConfig
    from lagc_hand.handmodel.cache import load_hand_model

    tr = d["tracking"].tracks[side]
    idx = np.flatnonzero(tr.present)
    if idx.size == 0:
        return None
    cfg = cfg or FitConfig()
    params, model = load_hand_model("open", side, "cpu")
    fit = pl._fit_one_hand(model, d["placements"][side], tr, idx, d["K"], cfg)
    motion = pl._clean_and_assemble(side, model, params, fit, idx, tr, d["K"], cfg, d["fps"], 0.5, "cpu")
    return motion.raw.keypoints3d.astype(np.float64), motion.clean.keypoints3d.astype(np.float64), tr.present, fit


def _procrustes_joint_err(pred: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """(21,) mm per joint after similarity alignment of pred (21, 3) to lab (21, 3)."""
    p, q = pred - pred.mean(0), lab - lab.mean(0)
    u, s, vt = np.linalg.svd(p.T @ q)
    dfix = np.sign(np.linalg.det(u @ vt))
    s[-1] *= dfix
    u[:, -1] *= dfix
    R = u @ vt
    scale = s.sum() / (p ** 2).sum()
    return np.linalg.norm(scale * p @ R - q, axis=1)


def _skeleton_mm(kp: np.ndarray) -> float:
    """Summed length of the 20 bones of (21, 3) public-order keypoints."""
    from lagc_hand_blender.core.skeleton import PUBLIC_PARENTS

    return float(np.linalg.norm(kp[1:] - kp[np.asarray(PUBLIC_PARENTS[1:])], axis=1).sum())


def measure(inp, d: dict, cfg=None) -> dict:
    """Per-joint error lists of one input (see the module docstring)."""
    K = d["K"]
    labels = next(iter(inp.labels.values()))
    acc = {k: [] for k in ("out-det", "out-lab", "cln-lab", "det-lab", "pa-out", "pa-det", "px-out", "px-det",
                           "px-cln", "betas", "root-out", "root-cln", "dz", "size")}
    for side in ("left", "right"):
        r = fit_and_clean(d, side, cfg)
        if r is None:
            continue
        out, clean, present, fit = r
        acc["betas"].append(fit.betas)
        tr = d["tracking"].tracks[side]
        for t in np.flatnonzero(present):
            hands = labels.get(int(d["frames"][t]))
            if not hands:
                continue
            o2, c2, det2 = rm.project(out[t], K), rm.project(clean[t], K), tr.keypoints2d[t]
            m = rm.match_hands([h.kp2d for h in hands], [h.visible for h in hands], [h.size for h in hands], [det2])
            if not m:
                continue
            lab = hands[m[0][0]]
            v = lab.visible
            nan = np.full(21, np.nan)

            def err(p):
                e = np.linalg.norm(p - lab.kp2d, axis=1)
                return np.where(v, e, np.nan)

            acc["out-det"].append(np.linalg.norm(o2 - det2, axis=1) / lab.size * 100)
            for key, p in (("out-lab", o2), ("cln-lab", c2), ("det-lab", det2)):
                acc[key].append(err(p) / lab.size * 100)
            for key, p in (("px-out", o2), ("px-cln", c2), ("px-det", det2)):
                acc[key].append(err(p))
            if lab.kp3d_mm is not None:
                acc["pa-out"].append(_procrustes_joint_err(out[t] * 1000, lab.kp3d_mm))
                acc["pa-det"].append(_procrustes_joint_err(tr.keypoints3d[t] * 1000, lab.kp3d_mm))
                o3, c3, l3 = out[t] * 1000, clean[t] * 1000, lab.kp3d_mm
                acc["root-out"].append(float(np.linalg.norm(o3[0] - l3[0])))
                acc["root-cln"].append(float(np.linalg.norm(c3[0] - l3[0])))
                acc["dz"].append(float(o3[0, 2] - l3[0, 2]))
                acc["size"].append(float(_skeleton_mm(o3) / _skeleton_mm(l3)))
            else:
                acc["pa-out"].append(nan)
                acc["pa-det"].append(nan)
    return acc


def report(name: str, acc: dict) -> str:
    lines = [f"== {name}: {len(acc['out-det'])} hand-frames, betas {np.round(np.mean(acc['betas'], 0), 2).tolist()}"]
    lines.append("         " + " ".join(f"{j:>5}" for j in JOINT_NAMES) + "   mean")
    for key in ("out-det", "out-lab", "cln-lab", "det-lab", "pa-out", "pa-det"):
        a = np.asarray(acc[key], np.float64)
        if a.size == 0 or np.isnan(a).all():
            continue
        with warnings.catch_warnings():  # joints never labelled in a set give NaN columns
            warnings.simplefilter("ignore", RuntimeWarning)
            per = np.nanmean(a, 0)
        lines.append(f"{key:>8} " + " ".join(f"{x:5.1f}" for x in per) + f"  {np.nanmean(a):5.2f}")
    px = {k: np.nanmean(np.asarray(acc[k])) for k in ("px-out", "px-cln", "px-det")}
    lines.append(f"   2D px: out {px['px-out']:.2f}  clean {px['px-cln']:.2f}  det {px['px-det']:.2f}  "
                 f"ratio out/det {px['px-out'] / px['px-det']:.3f}  clean/det {px['px-cln'] / px['px-det']:.3f}")
    if acc["pa-out"] and not np.isnan(np.asarray(acc["pa-out"])).all():
        lines.append(f"   PA-MPJPE mm: out {np.nanmean(acc['pa-out']):.2f}  det {np.nanmean(acc['pa-det']):.2f}")
        lines.append(f"   abs. wrist mm: out {np.mean(acc['root-out']):.1f}  clean {np.mean(acc['root-cln']):.1f}  "
                     f"depth error {np.mean(acc['dz']):+.1f}  skeleton size out / label {np.mean(acc['size']):.3f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fit_joints", description=__doc__.split("\n\n")[0])
    ap.add_argument("--realdev")
    ap.add_argument("--cache", default=str(ROOT / "out" / "fit_joints"))
    ap.add_argument("--only", help="comma-separated input names (default: %s)" % ",".join(NAMES))
    args = ap.parse_args(argv)
    realdev = br.find_realdev(args.realdev)
    if realdev is None:
        print("realdev not found (--realdev PATH or LAGC_REALDEV)", file=sys.stderr)
        return 2
    names = args.only.split(",") if args.only else NAMES
    inputs = {i.name: i for i in br.realdev_inputs(realdev) + br.rendered_inputs(quick=True)}
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    groups: dict[str, dict] = {}
    for n in names:
        inp = inputs[n]
        acc = measure(inp, detect_cached(inp, cache))
        group = {"160": "onehand10k", "5": "onehand10k", "75": "onehand10k"}.get(n, inp.group if inp.still else n)
        groups[group] = br.merge(groups[group], acc) if group in groups else acc
        print(report(n, acc), flush=True)
    for g, acc in groups.items():
        print(report(f"[{g}]", acc), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
