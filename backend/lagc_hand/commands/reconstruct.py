"""Reconstruct both hands of a video into a HandMotion file.

Examples:
  lagc-hand reconstruct clip.mp4 -o clip_motion.npz
  lagc-hand reconstruct clip.mp4 -o m.npz --focal-mm 26 --frames 100:400 --stride 2 --smoothing 0.5
  lagc-hand reconstruct clip.mp4 -o m.npz --intrinsics 1450,1450,960,540
  lagc-hand reconstruct clip.mp4 -o m.npz --calibration phone_camera.yaml
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lagc_hand.errors import InputError
from lagc_hand.options import add_option_arguments, options_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="video file (mp4/mov/avi/webm/...) or a folder of images")
    p.add_argument("-o", "--output", required=True, help="HandMotion file to write (.npz)")
    add_option_arguments(p)
    p.add_argument("--summary", help="also write the summary as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from lagc_hand.api import reconstruct
    from lagc_hand_blender.core import handmotion

    out = Path(args.output)
    if out.suffix.lower() != ".npz":
        raise InputError(f"the output file must end in .npz, got {out.name!r}")
    options = options_from_args(args)
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
