"""Real footage: does the output find every hand and lie on it in the image?

    .venv/bin/python -m bench real [--realdev PATH] [--out DIR] [--quick] [--engines a,b] [--only a,b]
                                   [--no-rendered] [--no-write] [--verbose]

Runs the whole pipeline (exactly what ``lagc-hand reconstruct`` runs) per input
and engine (default ``mediapipe`` and ``mediapipe-raw``, side by side in one run)
on ``shared/realdev`` (real photos and clips, labelled where its README says;
the path is an argument and nothing of it is copied) and on the rendered clips
in ``assets/samples`` (exact 3D ground truth).  Each still is a one-frame video.
``--quick``: every still, the three shortest realdev clips, the first 100 frames
of the clip with reference landmarks and the rendered two-hand sample (< 3 min
on 2 cores).

Per input and engine (``out`` = fitted output, ``clean`` = cleaned output, both
projected with the K the pipeline used; ``det`` = the engine's own per-frame
observations before tracking):

* ``hands/fr``: predicted hands per frame, output (det; det maximum);
* ``found``: labelled hands matched (Hungarian on mean 2D distance, found below
  0.5 x max(bbox w, h)) by the output / by det, of all labelled hands;
  ``side``: of the matched hands with a labelled side, those with the right side;
* ``dup``: frames where two output skeletons sit on one hand / duplicate det
  hands: judged against the labels where every hand is labelled (rendered
  clips), else two predictions closer than 0.2 x hand size (mean keypoint
  distance, fingers as they are or mirrored) or one nested on the other;
  ``(+N behind)``: frames where the only such pair involves a hand the tracker
  bridged while it was hidden behind the other one -- a hidden hand lies on the
  front one in the image (the rendered ground truth does too, two_hands f91-96,
  and its labels leave such a hand out), so these are listed apart, not hidden:
  look at the overlays;
* ``2D px`` / ``2D /size`` / ``PCK@0.2``: per visible labelled joint of the found hands;
* 3D (labels with 3D only: RHD, rendered clips): wrist-rooted MPJPE and PA-MPJPE
  (mm) of out / clean / det (det: MediaPipe's world landmarks), absolute wrist
  error (mm) of out / clean;
* videos: ``jitter`` (realdev README: mean |p(t+1) - 2p(t) + p(t-1)| / hand size,
  x1000) of clean / out / det (the tracker's per-side detections); ``exp %``:
  frames whose output hand count is in the expected range of the clip;
  ``flips``: side-label changes within linked det tracks / swaps of the two
  fitted output tracks (one track jumps onto the other hand);
* ``ms/fr``: wall time per frame end to end (detect share).

It writes ``<out>/<input>.png`` (rows: frames; columns: engines; green = cleaned
output skeleton, cyan = its mesh outline, red = det keypoints, yellow = labels),
``<out>/rows.json`` and, unless ``--no-write``, a section in ``bench/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import real_metrics as rm  # noqa: E402

SAMPLES = ROOT / "assets" / "samples"
ENGINES = ("mediapipe", "mediapipe-raw")
SIDES = ("left", "right")
#: realdev clip -> (min, max) hands expected in a frame (realdev README, "what it shows").
EXPECTED_HANDS = {
    "dynhamr_demo3": (2, 2), "slp_pose_FOOTBALL": (2, 2), "slp_pose_SOUP": (2, 2),
    "slp_pose_test_video": (0, 1), "slp_pose_sample_video": (2, 2), "slpio_asl_different": (1, 2),
    "slpio_asl_house": (2, 2), "slpio_asl_wrong_what": (1, 2), "mpsamples_gesture_test_video": (0, 1),
    "mpsamples_hand_landmarker_test_video": (1, 1), "tfjs_asl_hand.25fps": (1, 1), "mmaction2_test1": (0, 2),
}
#: realdev label file -> the set name of its rows.
LABEL_SETS = {"coco_wholebody_hands.json": "coco-wb", "halpe_hands.json": "halpe",
              "onehand10k_hands.json": "onehand10k", "rhd_hands.json": "rhd (rendered)"}
#: --quick: this many of the shortest realdev clips, plus the one with per-frame reference
#: landmarks, plus the rendered two-hand sample (exact 3D on video).
QUICK_VIDEOS = 3
#: Label sets with every hand of a labelled frame labelled (the rendered clips' ground truth).
COMPLETE_SETS = ("gt",)
#: Label sets that are another program's output, not ground truth (no error ratio).
REFERENCE_SETS = ("mp-reference",)
QUICK_EXTRA_VIDEO = "tfjs_asl_hand.25fps"
QUICK_EXTRA_FRAMES = 100


@dataclass
class LabelHand:
    """One labelled hand.  kp2d: (21, 2) px (NaN where not labelled); visible: (21,)
    bool; size: max(bbox w, h) px; side: 'left' / 'right' / None; kp3d_mm: (21, 3)
    camera frame mm or None."""

    kp2d: np.ndarray
    visible: np.ndarray
    size: float
    side: Optional[str] = None
    kp3d_mm: Optional[np.ndarray] = None


@dataclass
class BenchInput:
    """One input.  labels: label-set name -> source frame index -> labelled hands.
    K: true (3, 3) intrinsics where known.  expected: (min, max) hands per frame."""

    name: str
    group: str
    path: Path
    still: bool
    labels: dict = field(default_factory=dict)
    K: Optional[np.ndarray] = None
    expected: Optional[tuple[int, int]] = None
    frame_end: Optional[int] = None  # only the first frames (--quick), None = all


# ---------------------------------------------------------------- inputs


def find_realdev(arg: Optional[str] = None) -> Optional[Path]:
    """``--realdev`` / ``LAGC_REALDEV`` / ``<repo>/../shared/realdev`` / ``/work/shared/realdev``."""
    for c in (arg, os.environ.get("LAGC_REALDEV"), ROOT.parent / "shared" / "realdev", "/work/shared/realdev"):
        if c and (Path(c) / "README.md").exists() and (Path(c) / "labels").is_dir():
            return Path(c)
    return None


def _label_hand(h: dict) -> LabelHand:
    kp = np.array([[np.nan, np.nan] if p is None else p for p in h["keypoints_2d"]], np.float64)
    vis = np.asarray(h.get("visible", [True] * 21), bool) & np.isfinite(kp).all(1)
    if h.get("bbox_xywh"):
        size = max(float(h["bbox_xywh"][2]), float(h["bbox_xywh"][3]), 1.0)
    else:
        size = rm.box_size(kp, vis)
    k3 = np.asarray(h["keypoints_3d_cam_mm"], np.float64) if h.get("keypoints_3d_cam_mm") else None
    return LabelHand(kp, vis, size, h.get("side"), k3)


def realdev_inputs(realdev: Path, quick: bool = False) -> list[BenchInput]:
    """Every still (grouped by folder, with its label sets) and the clips (shortest first)."""
    stills: dict[str, BenchInput] = {}
    for f in sorted((realdev / "images").glob("*/*")):
        if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
            stills[str(f.relative_to(realdev))] = BenchInput(f.stem, f.parent.name, f, True)
    for label_file, set_name in LABEL_SETS.items():
        d = json.loads((realdev / "labels" / label_file).read_text())
        for item in d["items"]:
            inp = stills[item["file"]]
            inp.labels[set_name] = {0: [_label_hand(h) for h in item["hands"]]}
            if item.get("K"):
                inp.K = np.asarray(item["K"], np.float64)
    manifest = json.loads((realdev / "manifest.json").read_text())
    frames = {Path(k).stem: v.get("frames", 0) for k, v in _manifest_files(manifest).items()}
    videos = sorted((realdev / "videos").glob("*.mp4"), key=lambda p: (frames.get(p.stem) or 10 ** 6, p.name))
    if quick:
        videos = videos[:QUICK_VIDEOS] + [v for v in videos[QUICK_VIDEOS:] if v.stem == QUICK_EXTRA_VIDEO]
    out = list(stills.values())
    for v in videos:
        inp = BenchInput(v.stem, "realdev video", v, False, expected=EXPECTED_HANDS.get(v.stem),
                         frame_end=QUICK_EXTRA_FRAMES if quick and v.stem == QUICK_EXTRA_VIDEO else None)
        if v.stem.startswith("tfjs_asl_hand"):
            ref = json.loads((realdev / "labels" / "tfjs_asl_hand_mediapipe_reference.json").read_text())
            inp.labels["mp-reference"] = {fr["frame_index"]: [_label_hand(h) for h in fr["hands"]]
                                          for fr in ref["frames"]}
        out.append(inp)
    return out


def _manifest_files(manifest) -> dict:
    """manifest.json (a list of entries with ``file``) -> {relative path: entry}."""
    return {e["file"]: e for e in manifest if isinstance(e, dict) and "file" in e}


def rendered_inputs(quick: bool = False) -> list[BenchInput]:
    """The rendered sample clips with their exact ground truth (quick: the two-hand sample only)."""
    out = []
    gt_two = SAMPLES / "two_hands_gt.npz"
    if gt_two.exists():
        with np.load(gt_two) as g:
            K = g["intrinsics"].astype(np.float64)
            kp = {s: g[f"{s}_keypoints"] for s in SIDES}
            pres = {s: g[f"{s}_present"].astype(bool) for s in SIDES}
        out.append(_rendered("two_hands", SAMPLES / "two_hands.mp4", K, kp, pres))
    for npz in [] if quick else sorted(SAMPLES.glob("interact_*.npz")):
        with np.load(npz) as g:
            K = g["K"].astype(np.float64)
            kp = {s: g[f"{s}_keypoints3d"] for s in SIDES}
            pres = {s: g[f"{s}_visible"] >= 0.3 for s in SIDES}
        out.append(_rendered(npz.stem, npz.with_suffix(".mp4"), K, kp, pres))
    return out


def _rendered(name: str, path: Path, K: np.ndarray, kp3d_m: dict, present: dict) -> BenchInput:
    labels: dict[int, list[LabelHand]] = {}
    for t in range(len(present["left"])):
        hands = []
        for s in SIDES:
            if present[s][t]:
                k2 = rm.project(kp3d_m[s][t], K)
                hands.append(LabelHand(k2, np.ones(21, bool), rm.box_size(k2), s, kp3d_m[s][t] * 1000.0))
        labels[t] = hands
    return BenchInput(name, "rendered", path, False, {"gt": labels}, K, (2, 2) if name != "two_hands" else None)


# ---------------------------------------------------------------- running


@dataclass
class Run:
    """One pipeline run.  motion: HandMotion; observations: the engine's per-frame
    FrameObservations; tracking: the TrackingResult; seconds: wall time."""

    motion: object
    observations: list
    tracking: object
    summary: dict
    seconds: float


def options_for(inp: BenchInput, engine: str):
    """ReconstructOptions for one input: the true K where known.

    While ReconstructOptions has no ``intrinsics`` field only the focal length
    (as a horizontal field of view) is passed and the principal point is taken
    as the image centre (the realdev RHD images and the rendered clips have it
    there anyway); once the field exists, the full ``(fx, fy, cx, cy)`` is passed.
    """
    from lagc_hand.options import ReconstructOptions
    from lagc_hand.placement.intrinsics import horizontal_fov_deg

    o = ReconstructOptions(engine=engine, device="cpu", frame_end=inp.frame_end)
    if inp.K is not None:
        if "intrinsics" in {f.name for f in fields(ReconstructOptions)}:
            K = inp.K
            o.intrinsics = (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
        else:
            import cv2

            w = cv2.imread(str(inp.path)).shape[1] if inp.still else int(2 * inp.K[0, 2])
            o.fov_deg = horizontal_fov_deg(inp.K, w)
    return o


def run_one(inp: BenchInput, engine: str) -> Run:
    """Run the pipeline on one input with one engine (quietly)."""
    from lagc_hand.pipeline import run_pipeline

    inter: dict = {}
    t0 = time.perf_counter()
    res = run_pipeline(inp.path, options_for(inp, engine), intermediates=inter)
    if "observations" not in inter:
        raise RuntimeError("run_pipeline(intermediates=...) no longer fills 'observations' (the engine's "
                           "per-frame hands before tracking), which the detector columns need")
    return Run(res.motion, inter["observations"], inter["tracking"], res.summary, time.perf_counter() - t0)


def predictions(run: Run) -> list[dict]:
    """Per frame: ``out`` / ``clean`` lists of (side, kp2d px, kp3d mm camera frame),
    ``hidden`` (one bool per ``out`` hand: the tracker bridged it while it was behind
    the other hand, :mod:`lagc_hand.tracking.occlusion`) and ``det`` list of
    (side, kp2d px, kp3d mm hand-relative)."""
    m = run.motion
    K = np.asarray(m.intrinsics, np.float64)
    frames = []
    for t in range(m.num_frames):
        f = {"index": int(m.frames[t]), "out": [], "clean": [], "det": [], "hidden": []}
        for s in SIDES:
            h = m.hands[s]
            if h.present[t]:
                f["hidden"].append(bool(run.tracking.tracks[s].bridged[t]))
                for var in ("out", "clean"):
                    k3 = (h.raw if var == "out" else h.clean).keypoints3d[t].astype(np.float64)
                    f[var].append((s, rm.project(k3, K), k3 * 1000.0))
        for o in run.observations[t].hands:
            f["det"].append(("right" if o.handedness > 0.5 else "left", np.asarray(o.keypoints2d, np.float64),
                             np.asarray(o.keypoints3d, np.float64) * 1000.0))
        frames.append(f)
    return frames


# ---------------------------------------------------------------- metrics

VARIANTS = ("out", "clean", "det")


def new_acc() -> dict:
    """Empty metric accumulator (lists and counts; :func:`merge` adds two up)."""
    return {"inputs": 0, "frames": 0, "labelled": 0, "found": {v: 0 for v in VARIANTS},
            "side_ok": {v: 0 for v in VARIANTS}, "side_n": {v: 0 for v in VARIANTS},
            "px": {v: [] for v in VARIANTS}, "rel": {v: [] for v in VARIANTS}, "pck": {v: [] for v in VARIANTS},
            "mpjpe": {v: [] for v in VARIANTS}, "pa": {v: [] for v in VARIANTS}, "root": {"out": [], "clean": []},
            "n_out": [], "n_det": [], "dup_out": 0, "behind_out": 0, "dup_det": 0, "jitter": {v: [] for v in VARIANTS},
            "exp_ok": [], "flips_det": 0, "swaps_out": 0, "seconds": 0.0, "detect_seconds": 0.0}


def merge(a: dict, b: dict) -> dict:
    """a + b, element by element (counts add, lists concatenate)."""
    out = {}
    for k, v in a.items():
        if isinstance(v, dict):
            out[k] = merge(v, b[k])
        else:
            out[k] = v + b[k]
    return out


def evaluate(frames: list[dict], run: Run, labels: Optional[dict], expected: Optional[tuple[int, int]],
             complete: bool = False) -> dict:
    """Accumulate every metric of one run; labels: source frame index -> labelled hands;
    complete: every hand in those frames is labelled (duplicates are then judged
    against the labels, see :func:`bench.real_metrics.labelled_duplicates`)."""
    acc = new_acc()
    acc["inputs"] = 1
    acc["frames"] = len(frames)
    acc["seconds"] = run.seconds
    acc["detect_seconds"] = run.summary["seconds"].get("engine", 0.0) + run.summary["seconds"].get("decode", 0.0)
    for f in frames:
        acc["n_out"].append(len(f["out"]))
        acc["n_det"].append(len(f["det"]))
        hands = labels.get(f["index"]) if labels is not None else None
        if complete and hands is not None:
            lab = ([h.kp2d for h in hands], [h.visible for h in hands], [h.size for h in hands])
            count = lambda preds: rm.labelled_duplicates(*lab, preds)  # noqa: E731
        else:
            count = rm.duplicate_pairs
        seen = [k for (_, k, _), hid in zip(f["out"], f["hidden"]) if not hid]
        dup = count(seen) > 0
        acc["dup_out"] += int(dup)
        # A hand bridged behind the other lies on it in the image, as the ground truth
        # does (two_hands f91-96 pass the nested rule; the rendered labels leave such a
        # hand out, so it pairs with the front hand's label): counted apart, not hidden.
        acc["behind_out"] += int(not dup and count([k for _, k, _ in f["out"]]) > 0)
        acc["dup_det"] += count([k for _, k, _ in f["det"]])
        if expected is not None:
            acc["exp_ok"].append(expected[0] <= len(f["out"]) <= expected[1])
        if hands is not None:
            _score_frame(acc, f, hands)
    if len(frames) >= 3:
        _temporal(acc, frames, run)
    return acc


def _score_frame(acc: dict, f: dict, hands: list[LabelHand]) -> None:
    acc["labelled"] += len(hands)
    lk = [h.kp2d for h in hands]
    lv = [h.visible for h in hands]
    ls = [h.size for h in hands]
    for var in ("out", "det"):
        preds = f[var]
        for li, pi, _ in rm.match_hands(lk, lv, ls, [k for _, k, _ in preds]):
            lab = hands[li]
            acc["found"][var] += 1
            if lab.side is not None:
                acc["side_n"][var] += 1
                acc["side_ok"][var] += int(preds[pi][0] == lab.side)
            for v in ((var,) if var == "det" else ("out", "clean")):
                side, k2, k3 = f[v][pi]
                e = rm.keypoint_errors(k2, lab.kp2d, lab.visible, lab.size)
                acc["px"][v].append(e["px"])
                acc["rel"][v].append(e["rel"])
                acc["pck"][v].append(e["pck"])
                if lab.kp3d_mm is not None:
                    acc["mpjpe"][v].append(rm.rooted_mpjpe(k3, lab.kp3d_mm, 0))
                    acc["pa"][v].append(rm.pa_mpjpe(k3, lab.kp3d_mm))
                    if v != "det":
                        acc["root"][v].append(float(np.linalg.norm(k3[0] - lab.kp3d_mm[0])))


def _temporal(acc: dict, frames: list[dict], run: Run) -> None:
    m = run.motion
    K = np.asarray(m.intrinsics, np.float64)
    series = {"left": {}, "right": {}}
    for s in SIDES:
        h = m.hands[s]
        series[s]["out"] = (rm.project(h.raw.keypoints3d.astype(np.float64), K), h.present)
        series[s]["clean"] = (rm.project(h.clean.keypoints3d.astype(np.float64), K), h.present)
        tr = run.tracking.tracks[s]
        series[s]["det"] = (np.asarray(tr.keypoints2d, np.float64), np.asarray(tr.present, bool))
        for v in VARIANTS:
            k2, p = series[s][v]
            size = np.array([rm.box_size(k) for k in k2])
            j = rm.jitter(k2, p, size)
            if np.isfinite(j):
                acc["jitter"][v].append(j)
    dets = [[k for _, k, _ in f["det"]] for f in frames]
    acc["flips_det"] += rm.side_flips(rm.link_tracks(dets), [[s for s, _, _ in f["det"]] for f in frames])
    # On the fitted output: there a swap is one jump; the cleanup smooths it into a
    # drift of both hands across the image over several frames (seen on
    # slpio_asl_different), which shows in the clean jitter instead.
    lo, ro = series["left"]["out"], series["right"]["out"]
    acc["swaps_out"] += rm.track_swaps(lo[0], ro[0], lo[1], ro[1])


def summarize(acc: dict) -> dict:
    """Accumulator -> the scalar numbers of one table row (NaN where nothing to measure)."""
    def mean(xs):
        xs = [np.atleast_1d(x) for x in xs]
        return float(np.concatenate(xs).mean()) if xs and sum(x.size for x in xs) else float("nan")

    r = {"inputs": acc["inputs"], "frames": acc["frames"], "labelled": acc["labelled"],
         "hands_out": mean(acc["n_out"]), "hands_det": mean(acc["n_det"]),
         "hands_det_max": int(max(acc["n_det"])) if acc["n_det"] else 0,
         "dup_out": acc["dup_out"], "behind_out": acc["behind_out"], "dup_det": acc["dup_det"],
         "exp_pct": 100.0 * mean([float(x) for x in acc["exp_ok"]]) if acc["exp_ok"] else float("nan"),
         "flips_det": acc["flips_det"], "swaps_out": acc["swaps_out"],
         "ms_per_frame": 1000.0 * acc["seconds"] / max(acc["frames"], 1),
         "detect_ms_per_frame": 1000.0 * acc["detect_seconds"] / max(acc["frames"], 1)}
    for v in VARIANTS:
        r[f"found_{v}"] = acc["found"].get(v, 0)
        r[f"side_{v}"] = (100.0 * acc["side_ok"][v] / acc["side_n"][v]) if acc["side_n"][v] else float("nan")
        r[f"px_{v}"] = mean(acc["px"][v])
        r[f"rel_{v}"] = mean(acc["rel"][v])
        r[f"pck_{v}"] = 100.0 * mean([x.astype(float) for x in acc["pck"][v]])
        r[f"mpjpe_{v}"] = mean(acc["mpjpe"][v])
        r[f"pa_{v}"] = mean(acc["pa"][v])
        r[f"jitter_{v}"] = 1000.0 * mean(acc["jitter"][v])
    for v in ("out", "clean"):
        r[f"root_{v}"] = mean(acc["root"][v])
    return r


# ---------------------------------------------------------------- tables


def _f(x, d: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{d}f}"


def _trio(r: dict, key: str, d: int = 1, vs=VARIANTS) -> str:
    return " / ".join(_f(r[f"{key}_{v}"], d) for v in vs)


def _dup(r: dict) -> str:
    """``dup out (+ frames with a bridged hand behind another) / dup det``."""
    behind = f" (+{r['behind_out']} behind)" if r.get("behind_out") else ""
    return f"{r['dup_out']}{behind} / {r['dup_det']}"


def detection_row(name: str, engine: str, r: dict) -> str:
    found = f"{r['found_out']} / {r['found_det']} of {r['labelled']}" if r["labelled"] else "–"
    return (f"| {name} | {engine} | {r['frames']} | {_f(r['hands_out'], 2)} ({_f(r['hands_det'], 2)}; "
            f"{r['hands_det_max']}) | {found} | {_trio(r, 'side', 0, ('out', 'det'))} | {_dup(r)} | "
            f"{_trio(r, 'px')} | {_trio(r, 'rel', 3)} | {_trio(r, 'pck', 0)} | "
            f"{_f(r['ms_per_frame'], 0)} ({_f(r['detect_ms_per_frame'], 0)}) |")


DETECTION_HEAD = ("| input | engine | frames | hands/frame out (det; det max) | found out / det | side % out / det "
                  "| dup out / det | 2D px out / clean / det | 2D / size out / clean / det "
                  "| PCK@0.2 % out / clean / det | ms/frame (detect) |\n|---|---|---|---|---|---|---|---|---|---|---|")
THREE_D_HEAD = ("| input | engine | found out / det of labelled | wrist-rooted MPJPE mm out / clean / det "
                "| PA-MPJPE mm out / clean / det | abs. wrist mm out / clean |\n|---|---|---|---|---|---|")
VIDEO_HEAD = ("| clip | engine | frames | expected hands | frames with them % | jitter x1000 out / clean / det "
              "| side flips det / output swaps | dup out / det | hands/frame out (det) | ms/frame (detect) |"
              "\n|---|---|---|---|---|---|---|---|---|---|")


def three_d_row(name: str, engine: str, r: dict) -> str:
    return (f"| {name} | {engine} | {r['found_out']} / {r['found_det']} of {r['labelled']} | {_trio(r, 'mpjpe')} | "
            f"{_trio(r, 'pa')} | {_trio(r, 'root', 1, ('out', 'clean'))} |")


def video_row(name: str, engine: str, r: dict, expected) -> str:
    exp = f"{expected[0]}-{expected[1]}" if expected else "–"
    return (f"| {name} | {engine} | {r['frames']} | {exp} | {_f(r['exp_pct'], 0)} | {_trio(r, 'jitter', 2)} | "
            f"{r['flips_det']} / {r['swaps_out']} | {_dup(r)} | {_f(r['hands_out'], 2)} "
            f"({_f(r['hands_det'], 2)}) | {_f(r['ms_per_frame'], 0)} ({_f(r['detect_ms_per_frame'], 0)}) |")


def tables(results: list[dict], engines: tuple[str, ...]) -> str:
    """Markdown: per set (summary), per input (detection + 2D), 3D, videos."""
    sets: dict[tuple[str, str], dict] = {}
    for res in results:
        for set_name, acc in res["accs"].items():
            key = (set_name, res["engine"])
            sets[key] = merge(sets[key], acc) if key in sets else acc
    order = sorted({k[0] for k in sets}, key=lambda n: (n.startswith("("), n))
    out = ["**By set** (labelled sets: their labelled hands; `(...)`: every input of that group)", "",
           DETECTION_HEAD]
    for n in order:
        for e in engines:
            if (n, e) in sets:
                out.append(detection_row(n, e, summarize(sets[(n, e)])))
    ratios = []
    for n in order:
        for e in engines:
            if (n, e) in sets:
                r = summarize(sets[(n, e)])
                if np.isfinite(r["px_out"]) and np.isfinite(r["px_det"]) and n not in REFERENCE_SETS:
                    ratios.append(f"{n} / {e}: out {r['px_out'] / r['px_det']:.2f}x, "
                                  f"clean {r['px_clean'] / r['px_det']:.2f}x")
    if ratios:
        out += ["", "2D error of the output relative to the engine's own 2D (target <= 1.0x): " + "; ".join(ratios)
                + ".  (`mp-reference` labels are MediaPipe's own output: there `det` ~ 0 and `out` is the "
                "output's distance from the detector itself.)"]
    out += ["", "**Per input** (first label set of each input)", "", DETECTION_HEAD]
    out += [detection_row(f"{r['group']}/{r['name']}", r["engine"], r["row"]) for r in results]
    three = [r for r in results if np.isfinite(r["row"]["mpjpe_out"]) or np.isfinite(r["row"]["mpjpe_det"])]
    if three:
        out += ["", "**3D** (inputs with 3D labels; set rows first)", "", THREE_D_HEAD]
        for n in order:
            for e in engines:
                r = summarize(sets[(n, e)]) if (n, e) in sets else None
                if r is not None and np.isfinite(r["mpjpe_out"]):
                    out.append(three_d_row(f"**{n}**", e, r))
        out += [three_d_row(f"{r['group']}/{r['name']}", r["engine"], r["row"]) for r in three]
    vids = [r for r in results if r["frames"] >= 3]
    if vids:
        out += ["", "**Videos**", "", VIDEO_HEAD]
        out += [video_row(f"{r['group']}/{r['name']}", r["engine"], r["row"], r["expected"]) for r in vids]
    return "\n".join(out)


# ---------------------------------------------------------------- main


def bench_input(inp: BenchInput, engines: tuple[str, ...], out_dir: Optional[Path]) -> list[dict]:
    """Run every engine on one input, score it, draw its overlay; one result per engine."""
    runs, preds, results = {}, {}, []
    for engine in engines:
        run = run_one(inp, engine)
        runs[engine], preds[engine] = run, predictions(run)
        accs = {}
        for set_name, labels in inp.labels.items():
            accs[set_name] = evaluate(preds[engine], run, labels, inp.expected, set_name in COMPLETE_SETS)
        if not inp.labels:
            accs[f"({inp.group})"] = evaluate(preds[engine], run, None, inp.expected)
        first = next(iter(inp.labels)) if inp.labels else f"({inp.group})"
        results.append({"name": inp.name, "group": inp.group, "engine": engine, "frames": len(preds[engine]),
                        "expected": inp.expected, "accs": accs, "row": summarize(accs[first])})
    if out_dir is not None:
        labels = next(iter(inp.labels.values())) if inp.labels else None
        results[0]["overlay"] = str(write_overlay_for(out_dir, inp, runs, preds, labels))
    return results


def write_overlay_for(out_dir: Path, inp: BenchInput, runs: dict, preds: dict, labels) -> Path:
    from bench.real_overlay import write_overlay

    return write_overlay(out_dir / f"{inp.group.replace(' ', '_')}__{inp.name}.png", inp.path, runs, preds, labels)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench real", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--realdev", help="the realdev folder (default: $LAGC_REALDEV, <repo>/../shared/realdev, "
                                      "/work/shared/realdev)")
    ap.add_argument("--out", default=str(ROOT / "out" / "bench_real"), help="overlays and rows.json go here")
    ap.add_argument("--quick", action="store_true", help="stills, the 3 shortest clips, the tfjs clip, the "
                                                         "rendered two-hand sample (< 3 min on 2 cores)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines (default: %(default)s)")
    ap.add_argument("--only", help="comma-separated input names (file stems) to run")
    ap.add_argument("--no-rendered", action="store_true", help="leave out the rendered sample clips")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    ap.add_argument("--verbose", action="store_true", help="show MediaPipe's native log lines (python -m bench real)")
    args = ap.parse_args(argv)
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    realdev = find_realdev(args.realdev)
    if realdev is None:
        print("bench real: realdev not found (give --realdev PATH or set LAGC_REALDEV); "
              "running the rendered clips only", file=sys.stderr)
    inputs = (realdev_inputs(realdev, args.quick) if realdev else []) + \
        ([] if args.no_rendered else rendered_inputs(args.quick))
    if args.only:
        keep = {s.strip() for s in args.only.split(",")}
        inputs = [i for i in inputs if i.name in keep]
    if not inputs:
        print("bench real: nothing to run", file=sys.stderr)
        return 2
    from lagc_hand.pipeline import load_hand_model

    from lagc_hand.engines import create_engine

    for s in SIDES:  # model and engine loading is not part of any input's time
        load_hand_model("open", s, "cpu")
    for e in engines:
        eng = create_engine(e)
        eng.process(np.zeros((96, 96, 3), np.uint8), 0.0)
        eng.close()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    t0 = time.perf_counter()
    for inp in inputs:
        for r in bench_input(inp, engines, out_dir):
            results.append(r)
            row = r["row"]
            print(f"{inp.group}/{inp.name:28s} {r['engine']:14s} {r['frames']:4d} fr  hands {row['hands_out']:.2f} "
                  f"(det {row['hands_det']:.2f})  found {row['found_out']}/{row['found_det']} of {row['labelled']}  "
                  f"2D px {_trio(row, 'px')}  {row['ms_per_frame']:.0f} ms/fr", flush=True)
    total = time.perf_counter() - t0
    text = tables(results, engines)
    print(text)
    print(f"\nbench real: {len(inputs)} inputs x {len(engines)} engines in {total:.0f} s; overlays in {out_dir}")
    (out_dir / "rows.json").write_text(json.dumps(
        [{k: v for k, v in r.items() if k != "accs"} for r in results], indent=1, default=_jsonable) + "\n")
    if not args.no_write:
        from bench.common import append_results

        what = "quick" if args.quick else "full"
        src = f"realdev at {realdev}" if realdev else "no realdev"
        append_results(f"Real footage (bench/real.py, {what})",
                       f"`.venv/bin/python -m bench real{' --quick' if args.quick else ''}` ({src}; "
                       f"engines {', '.join(engines)}; {total:.0f} s in all)\n\n{text}")
    return 0


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


if __name__ == "__main__":
    sys.exit(main())
