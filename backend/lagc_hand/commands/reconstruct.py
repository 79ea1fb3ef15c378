"""Reconstruct both hands of a video into a HandMotion file.

Examples:
  lagc-hand reconstruct clip.mp4 -o clip_motion.npz
  lagc-hand reconstruct clip.mp4 -o m.npz --focal-mm 26 --frames 100:400 --stride 2 --smoothing 0.5
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lagc_hand.errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="video file (mp4/mov/avi/webm/...) or a folder of images")
    p.add_argument("-o", "--output", required=True, help="HandMotion file to write (.npz)")
    p.add_argument("--engine", default="mediapipe", choices=("mediapipe", "mediapipe-raw", "lagc"),
                   help="hand engine: mediapipe (default; with second-hand recovery), "
                        "mediapipe-raw (plain MediaPipe, for comparison) or lagc (needs --checkpoint)")
    p.add_argument("--checkpoint", help="LAGC-Hand checkpoint (for --engine lagc)")
    cam = p.add_mutually_exclusive_group()
    cam.add_argument("--focal-mm", type=float, help="35 mm-equivalent focal length of the camera")
    cam.add_argument("--fov", type=float, help="horizontal field of view in degrees (default 60)")
    p.add_argument("--frames", help="frame range A:B (source frame numbers, B exclusive)")
    p.add_argument("--stride", type=int, default=1, help="keep every N-th frame")
    p.add_argument("--smoothing", type=float, default=1.0, help="cleanup strength, 0 = raw (default 1)")
    p.add_argument("--hand-model", default="open", help="'open' or a folder with MANO_RIGHT.pkl / MANO_LEFT.pkl")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (fitting)")
    p.add_argument("--detect-workers", type=int, default=0,
                   help="video chunks detected in parallel (0 = one per CPU core, 1 = sequential)")
    p.add_argument("--summary", help="also write the summary as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from lagc_hand.api import ReconstructOptions, reconstruct
    from lagc_hand.video import FrameRange
    from lagc_hand_blender.core import handmotion

    out = Path(args.output)
    if out.suffix.lower() != ".npz":
        raise InputError(f"the output file must end in .npz, got {out.name!r}")
    start, end = 0, None
    if args.frames:
        fr = FrameRange.parse(args.frames)
        start, end = fr.start, fr.end
    options = ReconstructOptions(
        engine=args.engine, checkpoint=args.checkpoint, focal_mm=args.focal_mm, fov_deg=args.fov,
        frame_start=start, frame_end=end, stride=args.stride, smoothing=args.smoothing,
        hand_model=args.hand_model, device=args.device, detect_workers=args.detect_workers,
    )
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        # One line that updates in place on a terminal and is gone at the end, where the
        # summary line takes its place; no bar at all when stderr is a log file or pipe.
        bar = tqdm(total=0, unit="frame", file=sys.stderr, desc="detect", dynamic_ncols=True, leave=False,
                   disable=None)

    def progress(p) -> None:
        if bar is None:
            return
        if p.frames_total and bar.total != p.frames_total:
            bar.total = p.frames_total
        bar.set_description(p.stage)
        bar.n = p.frames_done
        bar.refresh()

    try:
        result = reconstruct(args.video, options, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    handmotion.save(result.motion, out)
    s = result.summary
    if args.summary:
        Path(args.summary).write_text(json.dumps(s, indent=2) + "\n")
    found = s["hands_found_pct"]
    print(f"{out}: {s['frames']} frames, left hand {found['left']}%, right hand {found['right']}%, "
          f"both {found['both']}%, identity switches {s['identity_switches']}, "
          f"{s['fps']} fps end to end ({s['engine_fps']} fps engine)")
    if not s["hands_found"]:
        print("no hands were found in this video; the motion file holds none", file=sys.stderr)
    return 0
