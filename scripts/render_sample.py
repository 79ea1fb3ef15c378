#!/usr/bin/env python
"""Render the sample clip: assets/samples/two_hands.mp4 + two_hands_gt.npz.

Both hands of the open hand model, posed by the torch layer (choreography in
lagc_hand.synth.sample), rendered with Blender Cycles CPU under the bpy
module, then checked with MediaPipe (detection rate per hand).

Usage:  python scripts/render_sample.py [--out assets/samples] [--samples 8]
        python scripts/render_sample.py --preview 8 --out /tmp/preview   # contact sheet only
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    import numpy as np

    from lagc_hand.handmodel import load_hand_model_params
    from lagc_hand.synth.clip import render_clip, render_to_files
    from lagc_hand.synth.sample import FPS, sample_tracks

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "assets" / "samples"))
    ap.add_argument("--samples", type=int, default=8, help="Cycles samples per pixel")
    ap.add_argument("--preview", type=int, default=0, help="render only N evenly spaced frames to a contact sheet")
    ap.add_argument("--no-check", action="store_true", help="skip the MediaPipe detection check")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    right = load_hand_model_params("open", "right")
    left = load_hand_model_params("open", "left")
    tracks, cam = sample_tracks(right, left)
    if args.preview:
        import cv2

        from lagc_hand.synth.clip import HandTrack

        sel = np.linspace(0, tracks[0].num_frames - 1, args.preview).round().astype(int)
        sub = [HandTrack(t.side, t.params, t.global_orient[sel], t.hand_pose[sel], t.transl[sel], t.betas) for t in tracks]
        frames = list(render_clip(sub, cam, FPS, samples=args.samples))
        for fr, i in zip(frames, sel):
            cv2.putText(fr, str(i), (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        rows = [np.concatenate(frames[i:i + 4], 1) for i in range(0, len(frames), 4)]
        rows[-1] = np.pad(rows[-1], ((0, 0), (0, rows[0].shape[1] - rows[-1].shape[1]), (0, 0)))
        sheet = cv2.resize(np.concatenate(rows, 0), None, fx=0.5, fy=0.5)
        cv2.imwrite(str(out / "preview.png"), sheet[:, :, ::-1])
        print(f"wrote {out / 'preview.png'}")
        return 0
    video, gt = out / "two_hands.mp4", out / "two_hands_gt.npz"
    t0 = time.perf_counter()

    def progress(i, n):
        print(f"\rrendering frame {i}/{n} ({(time.perf_counter() - t0) / i:.2f} s/frame)", end="", file=sys.stderr)

    info = render_to_files(tracks, cam, video, gt, FPS, samples=args.samples, progress=progress)
    print(file=sys.stderr)
    info["video_bytes"] = video.stat().st_size
    print(f"wrote {video} ({info['video_bytes'] / 1e6:.2f} MB, codec {info['codec']}) and {gt}")
    if not args.no_check:
        from lagc_hand.synth.verify import detection_report

        info["mediapipe"] = detection_report(video, gt)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
