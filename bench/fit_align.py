"""Image-aligned fit (issue 13.2) on real footage: the old fit (placed 3D only) and the
new one (image term) side by side in one run, through the whole pipeline.

    python -m bench.fit_align [--realdev PATH] [--frames N] [--no-write]

Per input of ``shared/realdev`` (labelled stills, the RHD rendered stills with 3D and
K, and two videos) and per fit variant:

* 2D error against the labels, over visible labelled points, of the detector's own
  2D, the fitted output and the cleaned output (pixels and hand-box sizes);
* agreement of the fitted / cleaned output with the detector's 2D (what the user sees
  as "the mesh lies on the hand"), and for ``tfjs_asl_hand`` with MediaPipe's
  reference landmarks; 2D jitter of videos (acceleration / hand size);
* on RHD (3D labels, true K): wrist-rooted MPJPE, PA-MPJPE and the absolute wrist
  error of plain MediaPipe (its placed world landmarks) and of the fits.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench.accuracy import procrustes_error
from bench.common import ROOT, append_results

STILL_SETS = ("coco_wholebody_hands.json", "onehand10k_hands.json", "rhd_hands.json")
VIDEOS = ("tfjs_asl_hand.25fps.mp4", "mpsamples_hand_landmarker_test_video.mp4")
REFERENCE = {"tfjs_asl_hand.25fps.mp4": "tfjs_asl_hand_mediapipe_reference.json"}


def realdev_path(arg: str | None) -> Path | None:
    """--realdev, then $LAGC_REALDEV, then <repo>/../shared/realdev, then /work/shared/realdev."""
    for p in (arg, os.environ.get("LAGC_REALDEV"), ROOT.parent / "shared" / "realdev", "/work/shared/realdev"):
        if p and (Path(p) / "labels").is_dir():
            return Path(p)
    return None


def variants() -> dict:
    from lagc_hand.fitting import FitConfig

    return {"old fit (3D only)": FitConfig(w_image=0.0), "new fit (image)": FitConfig()}


def project(P: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) camera frame -> (..., 2) px."""
    z = np.maximum(P[..., 2:3], 1e-6)
    return P[..., :2] / z * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])


def box_size(kp: np.ndarray) -> np.ndarray:
    """(..., 21, 2) -> (...,) max side of the keypoint box (px)."""
    return np.maximum((kp.max(-2) - kp.min(-2)).max(-1), 1.0)


def palm_ratio(P: np.ndarray) -> np.ndarray:
    """(T, 21, 3) -> (T,) wrist-to-middle-MCP length / middle finger length (MCP to tip):
    0.97 in the open hand model at rest, 0.99 in RHD's labels, 1.14 in MediaPipe's world
    landmarks on tfjs_asl_hand (its palm is long relative to its fingers)."""
    L = lambda a, b: np.linalg.norm(P[:, a] - P[:, b], axis=-1)  # noqa: E731
    return L(0, 9) / np.maximum(L(9, 10) + L(10, 11) + L(11, 12), 1e-9)


def fit_speed(frames: int = 4096) -> str:
    """Fit throughput (hand-frames/s, 1 thread) of both variants on the speed bench's synthetic targets."""
    import torch

    from lagc_hand.fitting import fit_hand
    from lagc_hand.fitting.targets import random_pose_targets
    from lagc_hand.handmodel import HandModel, load_hand_model_params

    torch.set_num_threads(1)
    model = HandModel(load_hand_model_params("open", "right"))
    kp = random_pose_targets(model, frames, seed=0)
    K = np.array([[900.0, 0, 320], [0, 900.0, 240], [0, 0, 1]])
    uv = project(kp, K)
    parts = []
    for name, cfg in variants().items():
        best = 0.0
        for _ in range(2):
            t0 = time.perf_counter()
            fit_hand(model, kp, config=cfg, keypoints2d=uv, K=K)
            best = max(best, frames / (time.perf_counter() - t0))
        parts.append(f"{name}: {best:.0f}")
    return f"fit throughput ({frames} synthetic frames, hand-frames/s): " + ", ".join(parts)


def run(path: Path, cfg, frames: int | None, K: np.ndarray | None) -> dict:
    """One pipeline run; per side: present, detector 2D, fitted / cleaned 2D and 3D, placed MediaPipe 3D."""
    from lagc_hand.options import ReconstructOptions
    from lagc_hand.pipeline import run_pipeline

    opts = ReconstructOptions(frame_end=frames)
    if K is not None:  # the pipeline takes a focal (centred principal point; RHD's is centred)
        opts.fov_deg = math.degrees(2 * math.atan(K[0, 2] / K[0, 0]))
    inter: dict = {}
    t0 = time.perf_counter()
    res = run_pipeline(path, opts, fit_config=cfg, intermediates=inter)
    m = res.motion
    out = {"seconds": time.perf_counter() - t0, "fit_s": res.summary["seconds"].get("fit", 0.0),
           "cleanup_s": res.summary["seconds"].get("cleanup", 0.0), "K": m.intrinsics, "hands": {}}
    for s, h in m.hands.items():
        tr = inter["tracking"].tracks[s]
        out["hands"][s] = {"present": h.present & tr.present, "det2d": tr.keypoints2d.astype(np.float64),
                           "fit3d": h.raw.keypoints3d.astype(np.float64),
                           "clean3d": h.clean.keypoints3d.astype(np.float64),
                           "mp3d": inter["placements"][s].keypoints3d}
    return out


def agreement(out: dict) -> dict:
    """Mean distance (px, hand sizes) of fitted / cleaned 2D to the detector's 2D, and 2D jitter."""
    acc = {k: [] for k in ("fit", "clean", "fit_n", "clean_n", "jit_det", "jit_fit", "jit_clean",
                           "palm_fit", "palm_mp")}
    for h in out["hands"].values():
        p = h["present"]
        if not p.any():
            continue
        acc["palm_fit"] += list(palm_ratio(h["fit3d"][p]))
        acc["palm_mp"] += list(palm_ratio(h["mp3d"][p]))
        size = box_size(h["det2d"][p])
        for name in ("fit", "clean"):
            d = np.linalg.norm(project(h[name + "3d"][p], out["K"]) - h["det2d"][p], axis=-1).mean(-1)
            acc[name] += list(d)
            acc[name + "_n"] += list(d / size)
        ok = p[2:] & p[1:-1] & p[:-2]
        if ok.any():
            sz = box_size(h["det2d"][1:-1][ok])[:, None]
            for name, kp in (("det", h["det2d"]), ("fit", project(h["fit3d"], out["K"])),
                             ("clean", project(h["clean3d"], out["K"]))):
                a = np.linalg.norm(kp[2:] - 2 * kp[1:-1] + kp[:-2], axis=-1)[ok] / sz
                acc["jit_" + name] += list(a.mean(-1))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in acc.items()}


def match_labels(out: dict, hands: list, frame: int = 0) -> list:
    """Pairs (label hand, predicted side) by mean detector-2D distance < 0.5 box (greedy, nearest first)."""
    cands = []
    for li, lab in enumerate(hands):
        if lab.get("keypoints_2d") is None:
            continue
        vis = np.asarray(lab["visible"], bool)
        kp = np.array([k if k is not None else [0, 0] for k in lab["keypoints_2d"]], np.float64)
        box = max(lab["bbox_xywh"][2], lab["bbox_xywh"][3], 1.0)
        for s, h in out["hands"].items():
            if vis.any() and h["present"][frame]:
                d = np.linalg.norm(h["det2d"][frame][vis] - kp[vis], axis=-1).mean()
                if d < 0.5 * box:
                    cands.append((d, li, s, kp, vis, box))
    used_l, used_s, pairs = set(), set(), []
    for d, li, s, kp, vis, box in sorted(cands, key=lambda c: c[0]):
        if li not in used_l and s not in used_s:
            used_l.add(li)
            used_s.add(s)
            pairs.append((li, s, kp, vis, box))
    return pairs


def label_errors(out: dict, pairs: list, frame: int = 0) -> dict:
    """Per-joint 2D error against the labels (px, box sizes) of detector / fitted / cleaned output."""
    acc = {k: [] for k in ("det", "fit", "clean", "det_n", "fit_n", "clean_n")}
    for li, s, kp, vis, box in pairs:
        h = out["hands"][s]
        for name, pred in (("det", h["det2d"][frame]), ("fit", project(h["fit3d"][frame], out["K"])),
                           ("clean", project(h["clean3d"][frame], out["K"]))):
            e = np.linalg.norm(pred[vis] - kp[vis], axis=-1)
            acc[name] += list(e)
            acc[name + "_n"] += list(e / box)
    return acc


def rhd_errors(out: dict, pairs: list, labels: list) -> dict:
    """3D errors (mm) on RHD: wrist-rooted MPJPE, PA-MPJPE, absolute wrist, for MediaPipe / fit / cleaned."""
    acc: dict = {}
    for li, s, *_ in pairs:
        gt = np.asarray(labels[li]["keypoints_3d_cam_mm"], np.float64)[None] / 1000.0
        h = out["hands"][s]
        for name in ("mp", "fit", "clean"):
            p = h[name + "3d"][:1]
            rel = (p - p[:, :1]) - (gt - gt[:, :1])
            acc.setdefault(name, []).append((1000 * np.linalg.norm(rel, axis=-1).mean(),
                                             1000 * procrustes_error(p, gt).mean(),
                                             1000 * np.linalg.norm(p[0, 0] - gt[0, 0])))
    return {k: np.mean(v, axis=0) for k, v in acc.items()}


def fmt(x: float, nd: int = 1) -> str:
    return "—" if not np.isfinite(x) else f"{x:.{nd}f}"


def bench_stills(realdev: Path, vs: dict, rows: list, three_d: list) -> dict:
    """Labelled stills: 2D against labels (all sets pooled per variant) and RHD 3D."""
    pooled = {name: {} for name in vs}
    for set_file in STILL_SETS:
        meta = json.loads((realdev / "labels" / set_file).read_text())
        for item in meta["items"]:
            K = np.asarray(item["K"], np.float64) if "K" in item else None
            for name, cfg in vs.items():
                out = run(realdev / item["file"], cfg, None, K)
                pairs = match_labels(out, item["hands"])
                for k, v in label_errors(out, pairs).items():
                    pooled[name].setdefault(k, []).extend(v)
                ag = agreement(out)
                pooled[name].setdefault("agree_fit", []).append(ag["fit"])
                pooled[name].setdefault("agree_fit_n", []).append(ag["fit_n"])
                if K is not None:
                    for k, v in rhd_errors(out, pairs, item["hands"]).items():
                        pooled[name].setdefault("rhd_" + k, []).append(v)
    for name, acc in pooled.items():
        m = {k: float(np.nanmean(v)) if len(v) and np.ndim(v[0]) == 0 else v for k, v in acc.items()}
        rows.append(f"| labelled stills ({len(acc.get('det', []))} joints) | {name} "
                    f"| {fmt(m['det'])} ({fmt(m['det_n'], 3)}) "
                    f"| {fmt(m['fit'])} ({fmt(m['fit_n'], 3)}) | {fmt(m['clean'])} ({fmt(m['clean_n'], 3)}) "
                    f"| {fmt(m['agree_fit'])} ({fmt(m['agree_fit_n'], 3)}) | — | — |")
        for k in ("mp", "fit", "clean"):
            if acc.get("rhd_" + k):
                e = np.mean(acc["rhd_" + k], axis=0)
                three_d.append(f"| {name} | {dict(mp='plain MediaPipe (placed)', fit='fitted', clean='cleaned')[k]} "
                               f"| {fmt(e[0])} | {fmt(e[1])} | {fmt(e[2])} |")
    return pooled


def bench_videos(realdev: Path, vs: dict, frames: int, rows: list) -> None:
    for v in VIDEOS:
        path = realdev / "videos" / v
        if not path.exists():
            continue
        for name, cfg in vs.items():
            out = run(path, cfg, frames, None)
            ag = agreement(out)
            ref = ""
            if v in REFERENCE:
                ref = _reference_agreement(realdev, out, REFERENCE[v])
            ref += f"; palm/finger fit {fmt(ag['palm_fit'], 2)} (MediaPipe {fmt(ag['palm_mp'], 2)})"
            rows.append(f"| {v} ({frames} fr) | {name} | — | — | — | {fmt(ag['fit'])} ({fmt(ag['fit_n'], 3)}) "
                        f"| {fmt(ag['clean'])} ({fmt(ag['clean_n'], 3)}) "
                        f"| det {fmt(ag['jit_det'], 4)} / fit {fmt(ag['jit_fit'], 4)} / clean {fmt(ag['jit_clean'], 4)}"
                        f"{ref} | fit {out['fit_s']:.2f} s, cleanup {out['cleanup_s']:.2f} s |")


def _reference_agreement(realdev: Path, out: dict, ref_file: str) -> str:
    """Cleaned output vs MediaPipe's published reference landmarks (px), per frame with one hand."""
    ref = json.loads((realdev / "labels" / ref_file).read_text())["frames"]
    errs = {"det": [], "clean": []}
    for h in out["hands"].values():
        for t in np.flatnonzero(h["present"]):
            if t < len(ref) and ref[t]["hands"]:
                r = np.asarray(ref[t]["hands"][0]["keypoints_2d"], np.float64)
                errs["det"].append(np.linalg.norm(h["det2d"][t] - r, axis=-1).mean())
                errs["clean"].append(np.linalg.norm(project(h["clean3d"][t], out["K"]) - r, axis=-1).mean())
    return f"; vs MediaPipe reference: det {fmt(np.mean(errs['det']))} px, cleaned {fmt(np.mean(errs['clean']))} px"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fit_align", description=__doc__.split("\n")[0])
    ap.add_argument("--realdev", help="path of shared/realdev (default: $LAGC_REALDEV or ../shared/realdev)")
    ap.add_argument("--frames", type=int, default=100, help="frames of each video (default 100)")
    ap.add_argument("--no-videos", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args(argv)
    realdev = realdev_path(args.realdev)
    if realdev is None:
        print("bench fit_align: shared/realdev not found; pass --realdev PATH or set LAGC_REALDEV", file=sys.stderr)
        return 2
    vs = variants()
    rows = ["| input | fit | detector 2D vs label px (box) | fitted 2D vs label | cleaned 2D vs label "
            "| fitted vs detector 2D px (hand) | cleaned vs detector 2D | jitter (/hand/frame²) | time |",
            "|---|---|---|---|---|---|---|---|---|"]
    three_d = ["| fit | output | wrist-rooted MPJPE mm | PA-MPJPE mm | abs. wrist mm |", "|---|---|---|---|---|"]
    bench_stills(realdev, vs, rows, three_d)
    if not args.no_videos:
        bench_videos(realdev, vs, args.frames, rows)
    text = "\n".join(rows) + "\n\nRHD rendered stills (3D labels, true K):\n\n" + "\n".join(three_d)
    text += "\n\n" + fit_speed()
    print(text)
    if not args.no_write:
        append_results("Image-aligned fit on shared/realdev (python -m bench.fit_align)", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
