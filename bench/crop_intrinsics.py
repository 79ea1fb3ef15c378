"""Does the camera option put the hand where it is?  Absolute wrist error (mm) on
the labelled images of ``shared/realdev`` that carry camera intrinsics and 3D
joints (RHD, rendered), whole and as off-centre crops around the hand, side by
side for: no camera given (60 degree guess), the true focal length with a
centred principal point (what --fov / --focal-mm can say), and the true
``--intrinsics`` of the crop.

    python bench/crop_intrinsics.py [--realdev PATH] [--crop 192] [--write]

The realdev files are read in place (never copied into the repository); each
image is reconstructed as a one-frame folder in a temporary directory.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def find_realdev(arg: str | None) -> Path | None:
    for cand in (arg, os.environ.get("LAGC_REALDEV"), REPO.parent / "shared" / "realdev", "/work/shared/realdev"):
        if cand and (Path(cand) / "labels" / "rhd_hands.json").is_file():
            return Path(cand)
    return None


def _wrist_error_mm(motion, side: str, truth_mm: np.ndarray) -> float | None:
    h = motion.hands[side]
    if not h.present.any():
        return None
    return float(np.linalg.norm(h.clean.root[h.present][0] * 1000.0 - truth_mm))


def _run(img: np.ndarray, options, tmp: Path):
    from lagc_hand.api import reconstruct

    folder = Path(tempfile.mkdtemp(dir=tmp))
    cv2.imwrite(str(folder / "000.png"), img)
    return reconstruct(folder, options).motion


def measure(realdev: Path, crop: int) -> list[dict]:
    from lagc_hand.api import ReconstructOptions

    labels = json.loads((realdev / "labels" / "rhd_hands.json").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for item in labels["items"]:
            img = cv2.imread(str(realdev / item["file"]))
            K = np.asarray(item["K"], float)
            for hand in item["hands"]:
                truth = np.asarray(hand["keypoints_3d_cam_mm"][0], float)
                x, y, w, h = hand["bbox_xywh"]
                H, W = img.shape[:2]
                x0 = int(np.clip(x + w / 2 - crop / 2, 0, W - crop))
                y0 = int(np.clip(y + h / 2 - crop / 2, 0, H - crop))
                K_crop = K - [[0, 0, x0], [0, 0, y0], [0, 0, 0]]
                views = {"whole": (img, K), f"crop {crop}px": (img[y0:y0 + crop, x0:x0 + crop], K_crop)}
                for view, (im, Kv) in views.items():
                    ih, iw = im.shape[:2]
                    # RHD's 2D labels carry no half-pixel shift (see the label file), so K is used as stored.
                    cams = {"no camera (60 deg)": ReconstructOptions(),
                            "true focal, centred": ReconstructOptions(intrinsics=(Kv[0, 0], Kv[1, 1], iw / 2, ih / 2)),
                            "--intrinsics (true K)": ReconstructOptions(
                                intrinsics=(Kv[0, 0], Kv[1, 1], Kv[0, 2], Kv[1, 2]))}
                    for cam, opts in cams.items():
                        opts.detect_workers, opts.device = 1, "cpu"
                        err = _wrist_error_mm(_run(im, opts, Path(tmp)), hand["side"], truth)
                        rows.append({"image": Path(item["file"]).name, "side": hand["side"], "view": view,
                                     "camera": cam, "wrist_mm": err,
                                     "pp_offset_px": round(float(np.hypot(Kv[0, 2] - iw / 2, Kv[1, 2] - ih / 2)), 1)})
    return rows


def table(rows: list[dict]) -> str:
    cams = list(dict.fromkeys(r["camera"] for r in rows))
    keys = list(dict.fromkeys((r["image"], r["side"], r["view"], r["pp_offset_px"]) for r in rows))
    out = ["| image | hand | view | principal point off centre px | " + " | ".join(cams) + " |",
           "|---|---|---|---|" + "---|" * len(cams)]
    for k in keys:
        vals = []
        for c in cams:
            e = next(r["wrist_mm"] for r in rows
                     if (r["image"], r["side"], r["view"], r["pp_offset_px"]) == k and r["camera"] == c)
            vals.append("not found" if e is None else f"{e:.1f}")
        out.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | " + " | ".join(vals) + " |")
    for view in dict.fromkeys(r["view"] for r in rows):
        med = []
        for c in cams:
            e = [r["wrist_mm"] for r in rows if r["view"] == view and r["camera"] == c and r["wrist_mm"] is not None]
            med.append(f"{np.median(e):.1f}" if e else "-")
        out.append(f"| **median** | | {view} | | " + " | ".join(med) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--realdev", help="the realdev folder (default: $LAGC_REALDEV, ../shared/realdev)")
    ap.add_argument("--crop", type=int, default=192, help="crop side in pixels (default 192)")
    ap.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args(argv)
    realdev = find_realdev(args.realdev)
    if realdev is None:
        print("realdev not found: pass --realdev PATH or set LAGC_REALDEV", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    text = table(measure(realdev, args.crop))
    print("Absolute wrist error, mm (first present frame; RHD is rendered, the only realdev set with K and 3D)")
    print(text)
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.write:
        with open(REPO / "bench" / "RESULTS.md", "a") as f:
            f.write(f"\n## Camera options: absolute wrist error on realdev RHD, whole and cropped "
                    f"({time.strftime('%Y-%m-%d')}, {platform.machine()} {os.cpu_count()} cores)\n\n"
                    f"`python bench/crop_intrinsics.py` (engine mediapipe, cleaned root of the fitted hand).\n\n"
                    f"{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
