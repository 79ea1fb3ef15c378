"""Benchmarks: accuracy (sample clip vs its ground truth) and speed (fps, fit throughput).

Same as ``python -m bench``; needs the repository checkout (bench/ lives beside backend/).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("which", nargs="?", default="all", choices=["accuracy", "speed", "all"])
    p.add_argument("--video")
    p.add_argument("--gt")
    p.add_argument("--no-write", action="store_true")


def run(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[3]
    if not (root / "bench" / "__main__.py").exists():
        from lagc_hand.errors import InputError

        raise InputError("the benchmarks live in the repository's bench/ folder, which this install lacks")
    sys.path.insert(0, str(root))
    from bench.__main__ import main

    argv = [args.which] + (["--video", args.video] if args.video else []) + (["--gt", args.gt] if args.gt else [])
    return main(argv + (["--no-write"] if args.no_write else []))
