"""Filter a HandMotion file with the same numpy edits as the add-on's Cleanup panel
(``core.mocap_edit`` and ``core.keyreduce``: one implementation of each edit).

The cleaned variant is rewritten and its keypoints refreshed by forward
kinematics; the raw variant is kept, except that bridged gap frames are filled
in both variants (the presence mask is shared, as in the pipeline) and --swap
exchanges everything the two hands hold in the range (an identity switch is a
labelling error of the observations, not a filter).

Order: swap, despike, fill gaps, smooth, reduce.

Examples:
  lagc-hand cleanup take1.npz -o take1_clean.npz --smooth 2 --despike --fill-gaps 8
  lagc-hand cleanup take1.npz -o fixed.npz --swap 120:180
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

from lagc_hand.errors import InputError
from lagc_hand_blender.core import handmotion as hm
from lagc_hand_blender.core import keyreduce, mocap_edit
from lagc_hand_blender.core.skeleton import MANO_JOINT_NAMES

#: The key channels of --reduce, in the order of ``keyreduce.reduce_hand_keys``'s columns.
KEY_CHANNELS = tuple(MANO_JOINT_NAMES) + ("wrist_location",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="HandMotion file (.npz)")
    p.add_argument("-o", "--output", required=True, help="where to write the cleaned HandMotion file")
    p.add_argument("--from", dest="source", choices=hm.VARIANTS, default="clean",
                   help="variant the edits start from (default clean; 'raw' re-cleans from scratch)")
    p.add_argument("--smooth", type=float, default=0.0, metavar="S",
                   help="Gaussian smoothing of rotations and wrist, sigma in frames (0 = off)")
    p.add_argument("--despike", action="store_true", help="replace 1-2 frame spikes by interpolation")
    p.add_argument("--spike-angle", type=float, default=20.0, help="joint jump that counts as a spike, degrees")
    p.add_argument("--spike-mm", type=float, default=30.0, help="wrist jump that counts as a spike, mm")
    p.add_argument("--fill-gaps", type=int, default=0, metavar="N", help="bridge gaps of at most N frames (0 = off)")
    p.add_argument("--gap-method", choices=("slerp", "spline"), default="spline")
    p.add_argument("--swap", action="append", default=[], metavar="A:B",
                   help="exchange left and right over source frames A..B inclusive (repeatable)")
    p.add_argument("--reduce", type=float, nargs="?", const=0.5, default=None, metavar="DEG",
                   help="snap the clean variant to the fewest linear keys within DEG degrees per joint "
                        "(default 0.5), each joint and the wrist keyed on its own and every present stretch "
                        "on its own, as the add-on's Reduce Keys; the kept key frames are listed in the header")
    p.add_argument("--reduce-mm", type=float, default=1.0, metavar="MM",
                   help="wrist location tolerance of --reduce, mm (default 1)")
    p.add_argument("--hands", default="left,right", help="hands to edit (default left,right)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def parse_swap(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise InputError(f"--swap expects FIRST:LAST source frames, e.g. 120:180, not {text!r}") from None
    if b < a:
        raise InputError(f"--swap {text}: the last frame is before the first")
    return a, b


def _refresh_keypoints(h: hm.HandTrackMotion, variant: hm.HandVariant) -> None:
    tips = h.rest_vertices[h.tip_vertex_ids]
    kp = mocap_edit.forward_keypoints(variant.quats, variant.root, h.rest_joints, tips)
    kp[~h.present] = 0.0
    variant.keypoints3d = kp.astype(np.float32)


def _reduce(frames: np.ndarray, present: np.ndarray, q: np.ndarray, x: np.ndarray, reduce_deg: float,
            reduce_mm: float, report: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Snap one hand's (N, 16, 4) rotations and (N, 3) wrist to the fewest linear keys
    (:func:`keyreduce.reduce_hand_keys`, the add-on's Reduce Keys); the kept key frames
    go into ``report`` per channel (source frames)."""
    keep = keyreduce.reduce_hand_keys(frames, present, q, x, np.radians(reduce_deg), reduce_mm / 1000.0)
    report["keys_before"] = keyreduce.fcurve_key_count(np.repeat(present[:, None], keep.shape[1], axis=1))
    report["keys_kept"] = keyreduce.fcurve_key_count(keep)
    report["key_frames"] = {name: [int(f) for f in frames[keep[:, c]]] for c, name in enumerate(KEY_CHANNELS)}
    return keyreduce.evaluate_hand_keys(frames, present, q, x, keep)


def cleanup_motion(motion: hm.HandMotion, *, source: str = "clean", smooth: float = 0.0, despike: bool = False,
                   spike_angle: float = 20.0, spike_mm: float = 30.0, fill_gaps: int = 0,
                   gap_method: str = "spline", swaps: list[tuple[int, int]] = (), reduce_deg: float | None = None,
                   reduce_mm: float = 1.0, hands: tuple[str, ...] = hm.SIDES) -> dict[str, Any]:
    """Edit ``motion`` in place; return a JSON-able report (per hand: what changed,
    rotation jitter and keypoint jitter of the clean variant before and after)."""
    report: dict[str, Any] = {"hands": {}}
    frames = np.asarray(motion.frames)
    for a, b in swaps:
        sel = (frames >= a) & (frames <= b)
        L, R = motion.hands["left"], motion.hands["right"]
        fields = [(L, R, n) for n in ("present", "confidence", "keypoints2d")]
        fields += [(L.variant(v), R.variant(v), n) for v in hm.VARIANTS for n in ("quats", "root", "keypoints3d")]
        new_l, new_r = mocap_edit.swap_hands(tuple(getattr(x, n) for x, _, n in fields),
                                             tuple(getattr(y, n) for _, y, n in fields), sel)
        for (x, y, n), va, vb in zip(fields, new_l, new_r):
            setattr(x, n, va)
            setattr(y, n, vb)
        report.setdefault("swapped_frames", 0)
        report["swapped_frames"] += int(sel.sum())
    for side in hands:
        h = motion.hands[side]
        src = h.variant(source)
        q = src.quats.astype(np.float64)
        x = src.root.astype(np.float64)
        present = h.present.copy()
        r: dict[str, Any] = {
            "jitter_deg_before": round(mocap_edit.rotation_jitter_deg(h.clean.quats, present), 4),
            "keypoint_jitter_mm_before": round(mocap_edit.position_jitter_mm(h.clean.keypoints3d, present), 4),
        }
        if not present.any():
            report["hands"][side] = {**r, "note": "never present"}
            continue
        if despike:
            q, x, n = mocap_edit.remove_spikes(q, x, present, None, spike_angle, spike_mm / 1000.0)
            r["spikes_fixed"] = n
        if fill_gaps > 0:
            q, x, new_present = mocap_edit.fill_gaps(q, x, present, fill_gaps, None, gap_method.upper())
            filled = new_present & ~present
            r["gap_frames_filled"] = int(filled.sum())
            if filled.any():
                h.raw.quats[filled] = q[filled]
                h.raw.root[filled] = x[filled]
                lo = np.where(present, h.confidence, 1.0)
                h.confidence[filled] = 0.5 * float(lo[present].min())
                present = new_present
                h.present[:] = present
                _refresh_keypoints(h, h.raw)
        if smooth > 0:
            q, x = mocap_edit.smooth(q, x, present, smooth)
        if reduce_deg is not None:
            q, x = _reduce(motion.frames, present, q, x, reduce_deg, reduce_mm, r)
        q[~present] = (1.0, 0.0, 0.0, 0.0)
        h.clean.quats = q.astype(np.float32)
        h.clean.root = x.astype(np.float32)
        _refresh_keypoints(h, h.clean)
        r["jitter_deg_after"] = round(mocap_edit.rotation_jitter_deg(h.clean.quats, present), 4)
        r["keypoint_jitter_mm_after"] = round(mocap_edit.position_jitter_mm(h.clean.keypoints3d, present), 4)
        report["hands"][side] = r
    motion.meta = dict(motion.meta or {})
    motion.meta.setdefault("cleanup_history", []).append(
        {"source": source, "smooth": smooth, "despike": despike, "fill_gaps": fill_gaps, "gap_method": gap_method,
         "swaps": [list(s) for s in swaps], "reduce_deg": reduce_deg, "reduce_mm": reduce_mm,
         "key_frames": {s: v.get("key_frames") for s, v in report["hands"].items() if "key_frames" in v}})
    return report


def run(args: argparse.Namespace) -> int:
    hands = tuple(s.strip() for s in args.hands.split(",") if s.strip())
    bad = [s for s in hands if s not in hm.SIDES]
    if bad:
        raise InputError(f"--hands: unknown hand(s) {', '.join(bad)}; use left and/or right")
    if args.smooth < 0 or not np.isfinite(args.smooth):
        raise InputError(f"--smooth must be 0 or more, got {args.smooth}")
    if args.fill_gaps < 0:
        raise InputError(f"--fill-gaps must be 0 or more, got {args.fill_gaps}")
    if args.reduce is not None and not args.reduce > 0:
        raise InputError(f"--reduce needs a positive tolerance in degrees, got {args.reduce}")
    if not args.reduce_mm > 0:
        raise InputError(f"--reduce-mm needs a positive tolerance in mm, got {args.reduce_mm}")
    swaps = [parse_swap(s) for s in args.swap]
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise InputError("the output must be a new file; the input is kept as it is")
    try:
        motion = hm.load(args.input)
    except hm.HandMotionError as exc:
        raise InputError(str(exc)) from None
    try:
        report = cleanup_motion(motion, source=args.source, smooth=args.smooth, despike=args.despike,
                                spike_angle=args.spike_angle, spike_mm=args.spike_mm, fill_gaps=args.fill_gaps,
                                gap_method=args.gap_method, swaps=swaps, reduce_deg=args.reduce,
                                reduce_mm=args.reduce_mm, hands=hands)
    except mocap_edit.MocapEditError as exc:
        raise InputError(str(exc)) from None
    hm.save(motion, args.output)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for side, r in report["hands"].items():
            extra = ", ".join(f"{k} {v}" for k, v in r.items()
                              if k in ("spikes_fixed", "gap_frames_filled", "keys_before", "keys_kept"))
            print(f"{side}: jitter {r['jitter_deg_before']} -> {r.get('jitter_deg_after', '-')} deg/frame^2, "
                  f"keypoints {r['keypoint_jitter_mm_before']} -> {r.get('keypoint_jitter_mm_after', '-')} mm"
                  + (f" ({extra})" if extra else ""))
        if report.get("swapped_frames"):
            print(f"swapped left/right on {report['swapped_frames']} frames")
        print(f"wrote {args.output}")
    return 0
