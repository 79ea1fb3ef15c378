"""Render the interacting-hand test clips with ground truth.

    .venv/bin/python scripts/render_interacting.py                 # all scenes -> assets/samples/
    .venv/bin/python scripts/render_interacting.py pray --frames 12 --samples 4 --out /tmp/x

Each scene (see :mod:`lagc_hand.synth.scenes`) gives
``interact_<scene>.mp4`` (640x480, 15 fps, Cycles CPU) and
``interact_<scene>.npz`` with the ground truth:

* ``fps`` (), ``K`` (3, 3) pixels, ``image_size`` (2,) ``[W, H]``;
* ``<side>_keypoints3d`` (T, 21, 3) camera frame, metres, public order;
* ``<side>_keypoints2d`` (T, 21, 2) pixels;
* ``<side>_rotmats`` (T, 16, 3, 3) MANO-order rotations, ``<side>_wrist`` (T, 3);
* ``<side>_visible`` (T,) share of the hand's image area that is visible
  (not hidden by the other hand, not outside the frame);
* ``hand_model`` () ``"open"``, ``scene`` (), ``render_seconds`` ().

``--fast`` draws with OpenCV instead of Cycles (seconds instead of minutes), for
looking at poses only.  Files are written to temp names and moved into place.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

WIDTH, HEIGHT, FPS, HFOV = 640, 480, 15.0, 60.0


def _fast_render(verts: dict, faces: dict, K: np.ndarray) -> np.ndarray:
    import cv2

    img = np.full((HEIGHT, WIDTH, 3), (105, 97, 92), np.uint8)
    tris = []
    for s, v in verts.items():
        tv = v[faces[s]]
        n = np.cross(tv[:, 1] - tv[:, 0], tv[:, 2] - tv[:, 0])
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        c = tv.mean(1)
        shade = np.abs((n * c / np.linalg.norm(c, axis=1, keepdims=True)).sum(1))
        tris += [(c[i, 2], tv[i], shade[i]) for i in range(len(tv))]
    for _, tv, s in sorted(tris, key=lambda x: -x[0]):
        p = tv[:, :2] / tv[:, 2:3] * K[0, 0] + K[:2, 2]
        col = (np.array([110, 135, 205]) * (0.35 + 0.65 * s)).tolist()
        cv2.fillConvexPoly(img, np.round(p * 16).astype(np.int32), col, lineType=cv2.LINE_AA, shift=4)
    return img[:, :, ::-1].copy()


def render_scene(name: str, out_dir: Path, n_frames: int, samples: int, fast: bool) -> dict:
    import cv2

    from lagc_hand.handmodel import HandModel, load_hand_model_params
    from lagc_hand.synth.scenes import SIDES, build_scene, posed_vertices, visible_fractions

    models = {s: HandModel(load_hand_model_params("open", s)) for s in SIDES}
    faces = {s: models[s].faces.cpu().numpy() for s in SIDES}
    seq = build_scene(name, models, n_frames)
    fx = 0.5 * WIDTH / np.tan(np.radians(HFOV) / 2)
    K = np.array([[fx, 0, WIDTH / 2], [0, fx, HEIGHT / 2], [0, 0, 1.0]])
    verts, kps = {}, {}
    for s in SIDES:
        verts[s], kps[s] = posed_vertices(models[s], seq[s].rotmats[:, 0], seq[s].rotmats[:, 1:], seq[s].wrist,
                                          keypoints=True)
    scene = objs = None
    if not fast:
        from lagc_hand.synth import scene as sc

        cam = sc.CameraIntrinsics(WIDTH, HEIGHT, float(fx), WIDTH / 2.0, HEIGHT / 2.0)
        scene = sc.new_scene(cam, samples=samples, background=(0.36, 0.38, 0.41))
        sc.add_lights(scene, key=(-0.5, -0.7, -0.6), strength=3.5)
        objs = {s: sc.add_mesh(scene, f"Hand_{s}", verts[s][0], faces[s], sc.skin_material(f"Skin_{s}"))
                for s in SIDES}
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"interact_{name}.mp4"
    tmp_video = out_dir / f".interact_{name}.tmp.mp4"
    writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    visible = {s: np.zeros(n_frames, np.float32) for s in SIDES}
    t0 = time.perf_counter()
    try:
        for t in range(n_frames):
            vt = {s: verts[s][t] for s in SIDES}
            if fast:
                img = _fast_render(vt, faces, K)
            else:
                for s in SIDES:
                    sc.set_mesh_vertices(objs[s], vt[s])
                img = sc.render_to_array(scene)
            writer.write(np.ascontiguousarray(img[:, :, ::-1]))
            vis = visible_fractions(vt, faces, K, WIDTH, HEIGHT)
            for s in SIDES:
                visible[s][t] = vis[s]
            print(f"{name}: frame {t + 1}/{n_frames} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    finally:
        writer.release()
    seconds = time.perf_counter() - t0
    gt = {"fps": np.float64(FPS), "K": K, "image_size": np.array([WIDTH, HEIGHT]), "hand_model": np.array("open"),
          "scene": np.array(name), "render_seconds": np.float64(seconds)}
    for s in SIDES:
        kp = kps[s]
        gt[f"{s}_keypoints3d"] = kp.astype(np.float32)
        gt[f"{s}_keypoints2d"] = (kp[..., :2] / kp[..., 2:3] * fx + K[:2, 2]).astype(np.float32)
        gt[f"{s}_rotmats"] = seq[s].rotmats.astype(np.float32)
        gt[f"{s}_wrist"] = seq[s].wrist.astype(np.float32)
        gt[f"{s}_visible"] = visible[s]
    tmp_gt = out_dir / f".interact_{name}.tmp.npz"
    with open(tmp_gt, "wb") as f:
        np.savez_compressed(f, **gt)
    os.replace(tmp_video, video)
    os.replace(tmp_gt, out_dir / f"interact_{name}.npz")
    return {"scene": name, "frames": n_frames, "seconds": round(seconds, 1),
            "per_frame_s": round(seconds / n_frames, 2), "video_bytes": video.stat().st_size}


def main(argv=None) -> int:
    from lagc_hand.synth.scenes import SCENES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", nargs="*", default=list(SCENES), help=f"any of {', '.join(SCENES)} (default all)")
    ap.add_argument("--frames", type=int, default=36, help="frames per clip (15 fps; default 36 = 2.4 s)")
    ap.add_argument("--samples", type=int, default=8, help="Cycles samples per pixel (default 8)")
    ap.add_argument("--out", default=str(ROOT / "assets" / "samples"), help="output folder")
    ap.add_argument("--fast", action="store_true", help="OpenCV drawing instead of Cycles (pose previews)")
    args = ap.parse_args(argv)
    for s in args.scenes:
        if s not in SCENES:
            ap.error(f"unknown scene {s!r}; choose from {', '.join(SCENES)}")
    for s in args.scenes:
        print(render_scene(s, Path(args.out), args.frames, args.samples, args.fast), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
