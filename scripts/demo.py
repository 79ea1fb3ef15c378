"""`make demo`: reconstruct the bundled sample clip into out/.

Writes ``out/two_hands_motion.npz`` (HandMotion), ``out/two_hands_summary.json``,
and the Blender scene built by the add-on's own scene writer (under the ``bpy``
module): ``out/two_hands.blend`` and ``out/two_hands.glb``.
If the sample clip is missing it says so and exits non-zero; it never
pretends to have produced anything.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "two_hands.mp4"
SAMPLE_GT = ROOT / "assets" / "samples" / "two_hands_gt.npz"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "out"), help="output folder (default out/)")
    ap.add_argument("--video", default=str(SAMPLE), help="clip to reconstruct (default: the sample)")
    ap.add_argument("--verbose", action="store_true", help="show MediaPipe's and Blender's own log lines")
    args = ap.parse_args(argv)
    video = Path(args.video)
    if not video.exists():
        print(f"demo: the sample clip {video} is missing; render it first with "
              f"'.venv/bin/python scripts/render_sample.py' (it is part of the repository once rendered)",
              file=sys.stderr)
        return 2
    from lagc_hand import quiet

    quiet.install(args.verbose)  # before MediaPipe loads
    from lagc_hand.api import ReconstructOptions, reconstruct
    from lagc_hand.errors import LagcHandError
    from lagc_hand_blender.core import handmotion

    options = ReconstructOptions()
    if video == SAMPLE and SAMPLE_GT.exists():
        import numpy as np

        with np.load(SAMPLE_GT, allow_pickle=False) as gt:
            if "intrinsics" in gt.files:
                K = gt["intrinsics"]
                width = float(2 * K[0, 2])
                import math

                options.fov_deg = math.degrees(2 * math.atan(0.5 * width / float(K[0, 0])))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"demo: reconstructing {_short(video)} (both hands: detect, track, fit, clean up)", flush=True)
    try:
        result = reconstruct(video, options, progress=_progress)
    except LagcHandError as exc:
        _progress(None)
        print(f"demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    _progress(None)
    motion_path = out / f"{video.stem}_motion.npz"
    handmotion.save(result.motion, motion_path)
    summary_path = out / f"{video.stem}_summary.json"
    summary_path.write_text(json.dumps(result.summary, indent=2) + "\n")
    print(f"demo: {result.summary['message']}; {result.summary['fps']} fps end to end")
    print(f"demo: wrote {_short(motion_path)} (HandMotion) and {_short(summary_path)}")
    # The same scene writer the add-on and `lagc-hand batch` use; Blender's own
    # chatter (save and glTF export logs) is shown only if it fails.
    from lagc_hand_blender.blender.export import write_scene_files

    with quiet.captured(args.verbose):
        written = write_scene_files(str(motion_path), str(out), formats=("blend", "glb"),
                                    video_path=str(video.resolve()), name=video.stem)
    files = [_short(Path(p)) for paths in written.values() for p in paths]
    print(f"demo: wrote {' and '.join(files)} (Blender scene: both hands' armatures, meshes, camera)")
    return 0


def _short(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _progress(p) -> None:
    """One status line that updates in place on a terminal (none in logs); None clears it."""
    if not sys.stderr.isatty():
        return
    if p is None:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
        return
    total = f"/{p.frames_total}" if p.frames_total else ""
    print(f"\r\033[K{p.stage:8s} {p.frames_done}{total} frames  {p.fps:6.1f} fps", end="", file=sys.stderr,
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
