"""``python -m bench [accuracy|speed|all] [--video V] [--gt G]``; ``python -m bench real [--realdev P] [--quick] ...``."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["real"]:  # real footage: its own options (bench/real.py)
        from lagc_hand import quiet

        quiet.install("--verbose" in argv)  # MediaPipe's native log lines, unless --verbose
        from bench import real

        return real.main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("which", nargs="?", default="all", choices=["accuracy", "speed", "interaction", "real", "all"])
    ap.add_argument("--video", help="clip (default: assets/samples/two_hands.mp4)")
    ap.add_argument("--gt", help="ground truth .npz (default: assets/samples/two_hands_gt.npz)")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args(argv)
    rc = 0
    if args.which in ("accuracy", "all"):
        from bench import accuracy

        rc |= accuracy.main(args.video, args.gt, write=not args.no_write)
    if args.which in ("speed", "all"):
        from bench import speed

        rc |= speed.main(args.video, write=not args.no_write)
    if args.which == "interaction":  # interacting-hand clips, ours vs raw MediaPipe (slow: not in "all")
        from bench import interaction

        rc |= interaction.main(write=not args.no_write)
    return rc


if __name__ == "__main__":
    sys.exit(main())
