"""The direct hand tracker against MediaPipe's legacy graph, clip by clip
(``python -m bench.hands_agreement [--realdev P] [--only a,b] [--backend DIR]``).

Per clip (the rendered samples, then every realdev video that has hands): frames, the legacy
graph's hands, frames where the two find the same number of hands, the mean and max 2D
distance (px) from each legacy hand to the nearest direct hand, the share of legacy hands the
direct tracker reproduces to 1e-3 px, side agreement, and the frames whose hand counts
differ.  ``--backend DIR``: import ``lagc_hand`` from another tree's ``backend/`` (e.g. an
older commit's, from ``git archive``) to measure it with the same command.  Prints a
markdown table; writes nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RENDERED = ("two_hands", "interact_clasp", "interact_cross", "interact_interlace", "interact_occlude",
            "interact_pray")
REAL = ("slp_pose_SOUP", "mpsamples_hand_landmarker_test_video", "mpsamples_gesture_test_video",
        "slp_pose_FOOTBALL", "slp_pose_test_video", "slpio_asl_different", "slpio_asl_house",
        "slpio_asl_wrong_what", "mmaction2_test1", "tfjs_asl_hand.25fps")


def compare(frames: list[np.ndarray]) -> dict:
    """Legacy graph and direct tracker over ``frames`` (both max 2 hands, default thresholds).

    Per hand of the legacy output, the nearest direct hand's mean 2D keypoint distance (px),
    whether the sides agree and the handedness confidences' difference.  Returns frames,
    hands (legacy), same (share of frames with the same hand count), mean_px / max_px,
    exact (share of legacy hands matched to 1e-3 px), side, score_median, differ (frames
    whose counts differ), palm_runs (the direct tracker's palm detections) and ours (its
    per-frame hands)."""
    from lagc_hand.engines.hands_tracker import HandsTracker
    from lagc_hand.engines.mediapipe_engine import MediaPipeEngine

    with MediaPipeEngine(max_hands=2) as legacy:
        theirs = [legacy.process(f, i / 30) for i, f in enumerate(frames)]
    with HandsTracker(max_hands=2) as direct:
        ours = [direct.process(f, i / 30) for i, f in enumerate(frames)]
        palm_runs = direct.palm_runs
    dist, side, score, differ = [], [], [], []
    for i, (a, b) in enumerate(zip(theirs, ours)):
        if len(a) != len(b):
            differ.append(i)
        for h in a:
            if b:
                d = [float(np.linalg.norm(h.keypoints2d - g.keypoints2d, axis=1).mean()) for g in b]
                j = int(np.argmin(d))
                dist.append(d[j])
                side.append((h.handedness > 0.5) == (b[j].handedness > 0.5))
                score.append(abs(h.score - b[j].score))  # both: the handedness classifier's confidence
    dist = np.array(dist) if dist else np.zeros(1)
    return {"frames": len(frames), "hands": sum(map(len, theirs)), "same": 1 - len(differ) / len(frames),
            "mean_px": float(dist.mean()), "max_px": float(dist.max()), "exact": float((dist < 1e-3).mean()),
            "side": float(np.mean(side)) if side else 1.0, "differ": differ,
            "score_median": float(np.median(score)) if score else 0.0, "palm_runs": palm_runs, "ours": ours}


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hands_agreement", description=__doc__)
    ap.add_argument("--realdev", help="realdev folder (default: <repo>/../shared/realdev, /work/shared/realdev)")
    ap.add_argument("--only", help="comma-separated clip names")
    ap.add_argument("--backend", help="import lagc_hand from this backend/ folder instead")
    args = ap.parse_args(argv)
    if args.backend:
        sys.path.insert(0, str(Path(args.backend).resolve()))
        for m in [m for m in sys.modules if m == "lagc_hand" or m.startswith("lagc_hand.")]:
            del sys.modules[m]
    from bench.common import rgb_frames
    from bench.real import find_realdev

    clips = [(n, ROOT / "assets" / "samples" / f"{n}.mp4") for n in RENDERED]
    realdev = find_realdev(args.realdev)
    if realdev is None:
        print("realdev not found: rendered clips only", file=sys.stderr)
    else:
        clips += [(n, Path(realdev) / "videos" / f"{n}.mp4") for n in REAL]
    only = set(args.only.split(",")) if args.only else None
    import lagc_hand

    print(f"lagc_hand from {Path(lagc_hand.__file__).parent}")
    print("| clip | frames | legacy hands | same count | mean px | max px | exact (<1e-3 px) | side | count differs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, path in clips:
        if (only and name not in only) or not path.is_file():
            continue
        r = compare(rgb_frames(path)[0])
        print(f"| {name} | {r['frames']} | {r['hands']} | {100 * r['same']:.1f} % | {r['mean_px']:.5f} | "
              f"{r['max_px']:.4f} | {100 * r['exact']:.1f} % | {100 * r['side']:.1f} % | "
              f"{', '.join(map(str, r['differ'][:8])) or '-'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
