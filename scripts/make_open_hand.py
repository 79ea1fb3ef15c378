#!/usr/bin/env python
"""Regenerate the open hand model: assets/open_hand_right.npz and open_hand_left.npz.

Deterministic: the same generator version and seed give the same bytes.
Usage:  python scripts/make_open_hand.py [--out assets] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from lagc_hand.handmodel.open_model import MODEL_ID, write_open_hand_assets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "assets"), help="output folder (default: assets/)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the pose samples behind the PCA basis")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    paths = write_open_hand_assets(args.out, seed=args.seed)
    for p in paths:
        print(f"wrote {p} ({p.stat().st_size / 1024:.0f} KiB)")
    print(f"{MODEL_ID}: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
