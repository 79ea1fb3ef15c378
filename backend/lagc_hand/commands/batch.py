"""Many videos -> HandMotion + Blender scenes (.blend / .glb / .fbx / .bvh) + QA reports, headless.

Each input (a video, a folder of videos, a folder of images, or a HandMotion
.npz to export again) gets a folder OUT/<name>/ with the requested formats, a
QA report (qa/report.md + plots + thumbnail) and manifest.json, written last.
A failed video is reported and skipped; re-running skips finished videos.

Examples:
  lagc-hand batch takes/ --out results/ --format blend,fbx,glb,bvh,npz --workers 2
  lagc-hand batch a.mp4 b.mp4 --out results/ --ray local
  lagc-hand batch takes/ --out results/ --ray ray://head-node:10001
"""
from __future__ import annotations

import argparse
import sys

from lagc_hand.options import add_option_arguments, options_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR", help="videos, folders, or HandMotion .npz files")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per video)")
    p.add_argument("--format", default="blend,fbx,glb,bvh,npz",
                   help="comma-separated: blend, fbx, glb, bvh, npz (default all)")
    p.add_argument("--workers", type=int, default=1, help="videos processed at the same time (default 1)")
    # The reconstruction options, as `lagc-hand reconstruct` has them; detect workers follow --workers.
    add_option_arguments(p, exclude={"detect_workers"})
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run the videos as Ray tasks: 'local' starts a local cluster, else a cluster address")
    p.add_argument("--max-influences", type=int, default=0, metavar="N",
                   help="skin weights kept per vertex in blend/fbx/glb, renormalised (4 for game engines; "
                        "default 0 = all of the model's)")
    p.add_argument("--force", action="store_true", help="redo videos that are already finished")
    p.add_argument("--json", action="store_true", help="print the per-video results as JSON at the end")


def run(args: argparse.Namespace) -> int:
    import json

    from lagc_hand.batch import make_tasks, parse_formats, run_batch
    from lagc_hand.engines.parallel import available_cores

    formats = parse_formats(args.format)
    # Videos already run side by side: each video's detection gets its share of the cores.
    detect_workers = 0 if args.workers <= 1 else max(1, available_cores() // args.workers)
    options = options_from_args(args, detect_workers=detect_workers).to_dict()
    tasks = make_tasks(args.inputs, args.out, formats, options, force=args.force, max_influences=args.max_influences)

    def printer(line: str) -> None:
        print(line, flush=True)

    results = run_batch(tasks, args.out, workers=args.workers, ray_address=args.ray, printer=printer)
    if args.json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2)
        print()
    return 1 if any(r.status == "failed" for r in results) else 0
