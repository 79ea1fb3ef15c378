"""Body-guided hand search in video, side by side: plain MediaPipe, the default engine without
the body search, the default engine (``python -m bench.body_guided [--realdev P] [--only a,b]``).

Per realdev clip and engine: hands per frame and frames with two hands (the engine's own output,
before tracking), body-guided hands, Pose runs, the detect cost per frame as wall time and as
process CPU time with the ratios to plain MediaPipe, and the time spent in the body search itself
(Pose + its landmark passes; on a busy shared machine the whole-run ratios vary by +-20 % from run
to run, this share does not); the one-hand clips (``mpsamples_hand_landmarker_test_video``, ``tfjs_asl_hand.25fps``)
carry the <= 1.3x cost target.  Prints a markdown table; writes nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

import numpy as np

from bench.common import rgb_frames
from bench.real import find_realdev

CLIPS = ("slpio_asl_different", "slpio_asl_house", "slpio_asl_wrong_what", "slp_pose_FOOTBALL", "slp_pose_SOUP",
         "slp_pose_test_video", "slp_pose_sample_video", "mmaction2_test1", "mpsamples_gesture_test_video",
         "mpsamples_hand_landmarker_test_video", "tfjs_asl_hand.25fps")
ONE_HAND = ("mpsamples_hand_landmarker_test_video", "tfjs_asl_hand.25fps")
MODES = ("raw", "no body", "default")


def run_clip(frames: list[np.ndarray], fps: float, mode: str) -> dict:
    """One engine over one clip: hands per frame, frames with 2, body hands, Pose runs, ms/frame."""
    from lagc_hand.engines.recovery import RecoveringMediaPipeEngine, RecoveryConfig

    cfg = RecoveryConfig()
    cfg.candidates.video.enabled = mode == "default"
    counts, body, spent = [], 0, [0.0]
    with RecoveringMediaPipeEngine(recovery=mode != "raw", config=cfg) as eng:
        inner = eng._body_hands

        def timed(*a):  # the body search's own cost, free of the run-to-run noise of a shared machine
            t = time.perf_counter()
            try:
                return inner(*a)
            finally:
                spent[0] += time.perf_counter() - t

        eng._body_hands = timed
        wall, cpu = time.perf_counter(), time.process_time()
        for i, f in enumerate(frames):
            hands = eng.process(f, i / fps)
            counts.append(len(hands))
            body += sum(h.extra.get("candidate") == "body" for h in hands)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        pose = eng._body.calls if eng._body is not None else 0
    c = np.array(counts)
    return {"hands": c.mean(), "two": 100.0 * np.mean(c >= 2), "body": body, "pose": pose,
            "wall": 1000 * wall / len(frames), "cpu": 1000 * cpu / len(frames), "search": 1000 * spent[0] / len(frames)}


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.body_guided", description=__doc__)
    ap.add_argument("--realdev", help="the realdev folder (default: $LAGC_REALDEV, <repo>/../shared/realdev)")
    ap.add_argument("--only", help="comma-separated clip names (default: %s)" % ",".join(CLIPS))
    args = ap.parse_args(argv)
    realdev = find_realdev(args.realdev)
    if realdev is None:
        print("bench.body_guided: shared/realdev not found (--realdev / LAGC_REALDEV)", file=sys.stderr)
        return 2
    from lagc_hand import quiet

    quiet.install(False)
    clips = args.only.split(",") if args.only else list(CLIPS)
    print("| clip | engine | frames | hands/frame | frames with 2 % | body hands | Pose runs "
          "| ms/frame wall (x raw) | ms/frame CPU (x raw) | body search ms/frame (x raw wall) |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
    for name in clips:
        frames, fps = rgb_frames(realdev / "videos" / f"{name}.mp4")
        rows = {m: run_clip(frames, fps, m) for m in MODES}
        for m, r in rows.items():
            base = rows["raw"]
            print(f"| {name}{' (one hand)' if name in ONE_HAND else ''} | {m} | {len(frames)} | {r['hands']:.2f} "
                  f"| {r['two']:.0f} | {r['body']} | {r['pose']} | {r['wall']:.1f} ({r['wall'] / base['wall']:.2f}x) "
                  f"| {r['cpu']:.1f} ({r['cpu'] / base['cpu']:.2f}x) | {r['search']:.2f} ({r['search'] / base['wall']:.3f}x) |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
